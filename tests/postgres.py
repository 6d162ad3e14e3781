"""A fresh PostgreSQL database per test on the server at 127.0.0.1:5432 (trust auth).

.ci/run makes sure the server is up; without one these tests fail rather than skip.
"""

import pytest


def _psql(db: str, sql: str) -> str:
    import subprocess

    out = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-tAc", sql],
                         capture_output=True, text=True, timeout=30)
    if out.returncode:
        raise RuntimeError(out.stderr)
    return out.stdout.strip()


@pytest.fixture
def postgres_databases():
    import shutil
    import uuid

    # .ci/run makes sure a PostgreSQL server is up; without one this test fails rather than skips.
    assert shutil.which("psql"), "psql not installed: .ci/run installs Debian's postgresql"
    try:
        _psql("test", "select 1")
    except RuntimeError as exc:
        pytest.fail(f"no PostgreSQL at 127.0.0.1:5432 (.ci/run starts one): {exc}")
    tag = uuid.uuid4().hex[:10]
    names = {"prefect": f"fc_prefect_{tag}", "mlflow": f"fc_mlflow_{tag}"}
    for name in names.values():
        _psql("test", f'create database "{name}"')
    yield names
    for name in names.values():
        _psql("test", f'drop database if exists "{name}" with (force)')
