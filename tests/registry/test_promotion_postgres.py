"""Promotion on a PostgreSQL-backed MLflow store: the advisory lock serialises racers that share no file system.

Each test gets a fresh database on the PostgreSQL at 127.0.0.1:5432 (.ci/run starts one), dropped afterwards.
"""

from __future__ import annotations

import pytest

from forecasting.registry import promotion
from forecasting.registry import models as registry
from forecasting.predict import latest_history
from forecasting.settings import Settings
from tests.registry.test_promotion import _judged_against_naive, race_two_challengers
from tests.postgres import _psql, postgres_databases  # noqa: F401 - a fixture, used by name

pytestmark = pytest.mark.slow
SERVER = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture
def database(postgres_databases):
    """A fresh, empty database (test_stack's fixture makes it, and drops it afterwards)."""
    return f"{SERVER}/{postgres_databases['mlflow']}"


@pytest.fixture
def pg_store(database, tmp_path, monkeypatch):
    """MLflow on the fresh database (schema created here, once, before any racer), artifacts in tmp_path."""
    previous = Settings.from_env().mlflow_tracking_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", database)
    monkeypatch.delenv("FORECASTING_LOCK_DATABASE_URL", raising=False)
    registry.configure(database)
    yield database, tmp_path
    registry.configure(previous)


def test_advisory_lock_excludes_other_sessions_and_dies_with_its_holder(database, tmp_path):
    import psycopg2

    other = psycopg2.connect(database)
    other.autocommit = True

    def try_lock() -> bool:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(hashtext(%s))", ("forecasting.promotion/m",))
            got = cursor.fetchone()[0]
            if got:
                cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", ("forecasting.promotion/m",))
            return got

    with promotion.promotion_lock(tmp_path / "locks", "m", database_url=database):
        assert not try_lock()
        assert not (tmp_path / "locks").exists()  # no file lock on the way
    assert try_lock()
    with pytest.raises(RuntimeError, match="boom"), promotion.promotion_lock(tmp_path, "m", database_url=database):
        raise RuntimeError("boom")
    assert try_lock()
    other.close()


def test_two_machines_racing_on_postgres_leave_one_consistent_champion(pg_store, tiny_fit):
    """Each racer has its own lock folder (as on two machines): only the database lock can keep them apart."""
    uri, store = pg_store
    config, frame, result = tiny_fit
    history = latest_history(frame, config.window.lookback)

    def register(trained):
        return registry.log_and_register(trained, history_example=history, artifacts_dir=store / "artifacts",
                                         aliases=(registry.CHALLENGER,))

    def promote(ref):
        return promotion.promote_challenger(ref.name, ref.version, frame, lock_dir=store / "locks-parent", origins=5)

    good = _judged_against_naive(result.forecaster)
    race_two_challengers(good, register, promote, store, frame, uri, [store / "locks-a", store / "locks-b"])
    assert _psql(uri.rsplit("/", 1)[1], "select count(*) from model_versions") == "3"
    assert not list(store.glob("locks-*/*.lock")), "the file lock was not used"
