"""The compose stack: docker-compose.yml checked against the compose specification and
for the properties the stack promises (health-gated start, loopback ports, secrets from .env).

These checks need no Docker engine; ``test_stack_core_runs_natively`` runs the same servers
(Prefect and MLflow on PostgreSQL) as local processes. The stack itself, brought up with
docker-compose under a private dockerd, is tests/stack/ (`make stack-test`, opt-in).

The schema is compose-spec's ``compose_spec.json`` as shipped in the docker-compose
1.29.2 wheel (``compose/config/compose_spec.json``, Apache-2.0), vendored under
tests/fixtures/compose/.
"""

import copy
import json
import os
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.postgres import _psql, postgres_databases  # noqa: F401 - a fixture, used by name

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
OVERRIDE = REPO / "docker" / "compose.stack-test.yml"
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "compose" / "compose_spec.json"
ONE_SHOT = {"create-bucket", "deploy"}
VAR = re.compile(r"\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


def _env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (REPO / ".env.example").read_text().splitlines() if line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def _interpolate(value, env: dict[str, str]):
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} substitution ($$ is a literal $)."""
    if isinstance(value, dict):
        return {k: _interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op in (":-", "-"):
            return arg
        raise KeyError(f"{name} is required: {arg}")

    return VAR.sub(sub, value.replace("$$", "\0")).replace("\0", "$")


def test_compose_file_is_valid_against_the_compose_spec(compose, validator):
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    assert set(compose["services"]) == {"postgres", "minio", "create-bucket", "mlflow", "prefect-server", "deploy", "worker"}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", "worker", "depends_on", "deploy", "condition"), "service_finished"),
        (("services", "postgres", "healthcheck", "retries"), "many"),
        (("services", "mlflow", "portz"), ["5000:5000"]),
    ],
)
def test_the_schema_check_catches_mistakes(compose, validator, path, value):
    broken = copy.deepcopy(compose)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert list(validator.iter_errors(broken))


def test_start_order_is_gated_on_health_and_completion(compose):
    services = compose["services"]
    for name, svc in services.items():
        if name in ONE_SHOT:
            assert svc.get("restart") == "no", name
            assert "healthcheck" not in svc
        else:
            assert svc["healthcheck"]["test"], name
            assert svc.get("restart") == "unless-stopped", name
        for dep, cond in svc.get("depends_on", {}).items():
            assert dep in services
            expected = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
            assert cond == {"condition": expected}, (name, dep)

    def deps(name):
        return set(services[name].get("depends_on", {}))

    assert deps("create-bucket") == {"minio"}
    assert deps("mlflow") == {"postgres", "create-bucket"}
    assert deps("prefect-server") == {"postgres"}
    assert deps("deploy") == {"prefect-server"}
    assert deps("worker") == {"prefect-server", "mlflow", "deploy"}


def test_ports_bind_to_loopback_by_default(compose):
    env = {}  # no .env: the defaults apply
    published = 0
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            assert isinstance(port, str) and port.startswith("${BIND_ADDRESS:-127.0.0.1}:"), (name, port)
            host, _, _ = _interpolate(port, env).split(":")
            assert host == "127.0.0.1"
            published += 1
    assert published == 5
    for name in ("deploy", "worker", "create-bucket"):
        assert "ports" not in compose["services"][name]


def test_no_literal_secrets_and_env_example_covers_them(compose):
    secret = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|ROOT_USER", re.I)
    env = _env_example()
    for name, svc in compose["services"].items():
        for key, value in svc.get("environment", {}).items():
            if secret.search(key):
                assert isinstance(value, str) and VAR.fullmatch(value), f"{name}.{key} must come from .env, not {value!r}"
                assert VAR.fullmatch(value).group(2) == ":?", f"{name}.{key}: an unset secret must stop compose"
        for key, value in svc.get("environment", {}).items():
            if isinstance(value, str) and "://" in value and "@" in value:  # never a password inside a URL
                userinfo = _interpolate(value, env).split("://", 1)[1].split("@", 1)[0]
                assert ":" not in userinfo and "PASSWORD" not in value.split("@", 1)[0], f"{name}.{key}: {value}"
    # The password travels as a variable of its own, read by libpq (PGPASSWORD) and by Prefect.
    services = compose["services"]
    for name, key in (("mlflow", "PGPASSWORD"), ("worker", "PGPASSWORD"), ("prefect-server", "PREFECT_SERVER_DATABASE_PASSWORD"),
                      ("postgres", "POSTGRES_PASSWORD")):
        assert services[name]["environment"][key].startswith("${POSTGRES_PASSWORD:?"), (name, key)
    required = {m.group(1) for m in VAR.finditer(COMPOSE.read_text()) if m.group(2) == ":?"}
    assert required == {"POSTGRES_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"}
    for name in required:
        assert name in env
    for name in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD"):
        assert "CHANGE-ME" in env[name]
    # Without the secrets compose refuses to start.
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD is required"):
        _interpolate(compose["services"]["postgres"]["environment"], {})


def test_servers_use_separate_postgres_databases_and_s3_artifacts(compose):
    services = _interpolate(compose["services"], _env_example())
    mlflow_env, prefect_env = services["mlflow"]["environment"], services["prefect-server"]["environment"]
    mlflow_db = mlflow_env["MLFLOW_BACKEND_STORE_URI"]
    assert mlflow_db == "postgresql://forecasting@postgres:5432/mlflow"
    # Prefect assembles postgresql+asyncpg://user:password@host:port/name from its parts.
    assert {k: v for k, v in prefect_env.items() if k.startswith("PREFECT_SERVER_DATABASE_")} == {
        "PREFECT_SERVER_DATABASE_DRIVER": "postgresql+asyncpg", "PREFECT_SERVER_DATABASE_HOST": "postgres",
        "PREFECT_SERVER_DATABASE_PORT": "5432", "PREFECT_SERVER_DATABASE_USER": "forecasting",
        "PREFECT_SERVER_DATABASE_NAME": "prefect", "PREFECT_SERVER_DATABASE_PASSWORD": "CHANGE-ME"}
    command = " ".join(services["mlflow"]["command"])
    assert '--artifacts-destination "s3://$MLFLOW_BUCKET/artifacts"' in command
    assert "--serve-artifacts" in command and '--backend-store-uri "$MLFLOW_BACKEND_STORE_URI"' in command
    assert mlflow_env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert "mc mb --ignore-existing" in services["create-bucket"]["command"][0]
    # The init script creates exactly the databases the URLs name.
    init = services["postgres"]["volumes"][1].split(":")[0]
    script = (REPO / init.removeprefix("./")).read_text()
    assert "docker-entrypoint-initdb.d" in services["postgres"]["volumes"][1]
    assert '"${MLFLOW_DB:-mlflow}" "${PREFECT_DB:-prefect}"' in script and "CREATE DATABASE" in script
    assert services["postgres"]["environment"]["MLFLOW_DB"] == "mlflow"


def test_workers_and_deploy_run_the_project_image_on_a_process_pool(compose):
    services = _interpolate(compose["services"], _env_example())
    images = {name: svc.get("image") for name, svc in services.items()}
    for name in ("mlflow", "prefect-server", "deploy", "worker"):
        assert images[name] == "forecasting:latest" and services[name]["build"]["context"] == "."
    worker, deploy = services["worker"], services["deploy"]
    assert "prefect worker start --pool \"$WORK_POOL\" --type process" in worker["command"][-1]
    assert "python -m pipelines.deployments --work-pool \"$WORK_POOL\"" in deploy["command"][-1]
    for svc in (worker, deploy):
        assert svc["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"
        assert svc["environment"]["WORK_POOL"] == "forecasting"
    assert worker["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_image_names_are_variables_with_the_standard_defaults(compose):
    images = {name: svc["image"] for name, svc in compose["services"].items()}
    assert images["postgres"] == "${POSTGRES_IMAGE:-postgres:16}"
    assert images["minio"].startswith("${MINIO_IMAGE:-minio/minio:RELEASE.")
    assert images["create-bucket"].startswith("${MC_IMAGE:-minio/mc:RELEASE.")
    assert images["worker"] == "${FORECASTING_IMAGE:-forecasting:latest}"
    assert compose["services"]["worker"]["build"]["args"]["BASE_IMAGE"] == "${BASE_IMAGE:-python:3.11-slim}"
    env = _env_example()
    assert env["POSTGRES_IMAGE"] == "postgres:16" and env["BASE_IMAGE"] == "python:3.11-slim"


def test_stack_test_override_swaps_in_an_s3_stand_in_only_for_the_test(compose, validator):
    """docker/compose.stack-test.yml (make stack-test): moto for MinIO, workers on their own queue."""
    override = yaml.safe_load(OVERRIDE.read_text())
    errors = list(validator.iter_errors(override))
    assert not errors, [e.message for e in errors]
    assert set(override["services"]) == {"minio", "create-bucket", "worker", "mlflow"}
    assert set(override["services"]["mlflow"]) == {"build"}  # builds on the host network; runs as in the main file
    assert override["services"]["minio"]["command"][0] == "moto_server"
    assert "--work-queue stack-test" in override["services"]["worker"]["command"][-1]
    # The users' file keeps MinIO.
    assert compose["services"]["minio"]["command"][0] == "server"
    assert "moto" not in COMPOSE.read_text()


def _entrypoint(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(ENTRYPOINT), "echo", "started"], env={"PATH": os.environ["PATH"], **env},
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PGPASSWORD": "CHANGE-ME"}, ["PGPASSWORD(placeholder CHANGE-ME)"]),
        ({"AWS_SECRET_ACCESS_KEY": "change-me-at-least-8-chars", "PREFECT_SERVER_DATABASE_PASSWORD": ""},
         ["AWS_SECRET_ACCESS_KEY(placeholder CHANGE-ME)", "PREFECT_SERVER_DATABASE_PASSWORD(empty)"]),
        ({"DB_PASSWORD_FILE": "/nonexistent/secret"}, ["DB_PASSWORD_FILE(unreadable file /nonexistent/secret)"]),
    ],
)
def test_image_entrypoint_refuses_placeholder_and_empty_secrets(env, named):
    done = _entrypoint(env)
    assert done.returncode == 78 and "started" not in done.stdout
    assert done.stderr.startswith("forecasting: refusing to start, set real secrets in .env:")
    for item in named:  # every offending variable in the one line
        assert item in done.stderr, done.stderr


def test_image_entrypoint_runs_the_command_with_real_secrets(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret-value")
    done = _entrypoint({"PGPASSWORD": "x7-real", "DB_PASSWORD_FILE": str(secret), "MLFLOW_TRACKING_URI": "http://mlflow:5000"})
    assert done.returncode == 0 and done.stdout == "started\n", done.stderr
    (tmp_path / "pw").write_text("CHANGE-ME")
    assert _entrypoint({"DB_PASSWORD_FILE": str(secret)}).returncode == 78


def test_dockerfile_is_cpu_by_default_with_a_cuda_build_arg():
    text = (REPO / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim" in text and "FROM ${BASE_IMAGE}" in text
    # Two stages from the same base: wheels, pip and the build files stay in the first.
    assert "FROM ${BASE_IMAGE} AS build" in text and "COPY --from=build /opt/venv /opt/venv" in text
    assert 'ENTRYPOINT ["forecasting-entrypoint"]' in text and "COPY docker/entrypoint.sh" in text
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in text
    assert 'torch==${TORCH_VERSION}' in text and "ARG TORCH_VERSION=2.13.0" in text
    for module in ("psycopg2", "asyncpg", "boto3"):
        assert module in text
    for path in ("forecasting", "pipelines", "configs"):
        assert f"COPY {path} ./{path}" in text


# --- The stack's core, natively: Prefect and MLflow servers on PostgreSQL, a served deployment ---

SEED = """
import os, sys, yaml
saved = dict(os.environ)
from tests.conftest import synthetic_frame, tiny_config_dict  # sets the test session's env at import: undo
os.environ.clear()
os.environ.update(saved)
from forecasting.data.store import ObservationStore
from forecasting.settings import Settings
from pipelines.train import train_flow

home, config_path = sys.argv[1], sys.argv[2]
ObservationStore(Settings.from_env(home).store_dir).upsert("synthetic", synthetic_frame())
with open(config_path, "w") as fh:
    yaml.safe_dump(tiny_config_dict(training={"max_epochs": 1}, promotion={"must_beat": []}), fh)
summary = train_flow(config_path, home=home)
print("SEEDED", summary["name"], summary["version"], summary.get("promoted"))
"""

TRIGGER = """
import json, time
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment

deadline = time.monotonic() + {wait}
with get_client(sync_client=True) as client:
    while True:  # the served process registers the deployment when it starts
        try:
            client.read_deployment_by_name("predict/predict-tiny")
            break
        except Exception as exc:
            if time.monotonic() > deadline:
                raise TimeoutError("waited {wait} s for `forecast serve` to register predict/predict-tiny") from exc
            time.sleep(0.5)
run = run_deployment("predict/predict-tiny", timeout={wait})
print("RUN", json.dumps({"state": run.state.type.value, "name": run.name, "id": str(run.id)}))
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Bounded waits, sized for a loaded machine (issue 19: fixed 60 s / 120 s waits failed at load
# averages of 20-30, and passed on a rerun). Each wait ends early when the process it waits on
# exits, and its error names what it waited for. STACK_WAIT_SECONDS scales them on slower machines.
WAIT = int(os.environ.get("STACK_WAIT_SECONDS", "300"))


def _wait_http(url: str, proc, timeout: float) -> None:
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode} before {url} answered")
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except OSError as exc:
            last = exc
            time.sleep(0.5)
    raise TimeoutError(f"waited {timeout:.0f} s for {url} ({proc.args[:3]}) to answer; last error: {last!r}")


@pytest.mark.timeout(5 * WAIT + 300)
def test_stack_core_runs_natively(tmp_path, postgres_databases):
    """`prefect server` + `mlflow server` on PostgreSQL, a model trained and promoted through them,
    `forecast serve` serving the predict deployment, a run triggered through the Prefect API."""
    import os
    import signal
    import subprocess
    import sys

    import pandas as pd

    bin_dir = Path(sys.executable).parent
    prefect_port, mlflow_port = _free_port(), _free_port()
    home = tmp_path / "home"
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "OMP_NUM_THREADS", "MPLBACKEND", "MPLCONFIGDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME")
    base = {k: os.environ[k] for k in keep if k in os.environ}
    base.update({
        "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true", "GIT_PYTHON_REFRESH": "quiet", "PYTHONPATH": str(REPO),
        "PREFECT_LOGGING_LEVEL": "WARNING",
    })
    client_env = {**base, "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
                  "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}", "FORECASTING_HOME": str(home)}
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = []

    def start(name, args, env):
        out = open(logs / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True)
        procs.append((proc, out))
        return proc

    def log_tail():
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(logs.iterdir()))

    try:
        prefect_server = start("prefect-server", [str(bin_dir / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(prefect_port)], {
            **base, "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{postgres_databases['prefect']}",
        })
        mlflow_server = start("mlflow-server", [
            str(bin_dir / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1",
            "--backend-store-uri", f"postgresql://postgres@127.0.0.1:5432/{postgres_databases['mlflow']}",
            "--artifacts-destination", (tmp_path / "artifacts").as_uri(), "--serve-artifacts",
        ], {**base, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
        _wait_http(f"http://127.0.0.1:{prefect_port}/api/health", prefect_server, WAIT)
        _wait_http(f"http://127.0.0.1:{mlflow_port}/health", mlflow_server, WAIT)

        schedules = tmp_path / "schedules.yaml"
        schedules.write_text(yaml.safe_dump({"deployments": {"predict-tiny": {
            "flow": "predict", "cron": "0 0 1 1 *", "parameters": {"model_name": "tiny-synthetic"}}}}))
        # Served from the start (it registers the deployment) while the model trains.
        serve = start("serve", [str(bin_dir / "forecast"), "serve", "--schedules", str(schedules)], client_env)

        # Train, register and promote a tiny model through both servers (a flow run on the Prefect server).
        seed = subprocess.run([sys.executable, "-c", SEED, str(home), str(tmp_path / "tiny.yaml")], env={**client_env, "TMPDIR": str(tmp_path)},
                              capture_output=True, text=True, timeout=2 * WAIT, cwd=tmp_path)
        assert seed.returncode == 0, seed.stderr[-3000:] + log_tail()
        assert "SEEDED tiny-synthetic 1 True" in seed.stdout, seed.stdout + seed.stderr[-3000:]
        # MLflow keeps the registry in its PostgreSQL database.
        assert _psql(postgres_databases["mlflow"], "select name from registered_models") == "tiny-synthetic"
        assert _psql(postgres_databases["mlflow"], "select version from registered_model_aliases where alias = 'champion'") == "1"

        trigger = subprocess.run([sys.executable, "-c", TRIGGER.replace("{wait}", str(WAIT))], env=client_env, capture_output=True,
                                 text=True, timeout=2 * WAIT + 60, cwd=tmp_path)
        assert serve.poll() is None, log_tail()
        assert trigger.returncode == 0, trigger.stderr[-3000:] + log_tail()
        run = json.loads(trigger.stdout.split("RUN ", 1)[1])
        assert run["state"] == "COMPLETED", log_tail()
        assert run["name"] == "predict-tiny-synthetic@2024-01-17T15:00"  # renamed to the origin it forecast from

        files = list((home / "forecasts").rglob("*.parquet"))
        assert len(files) == 1, files
        forecasts = pd.read_parquet(files[0])
        assert len(forecasts) == 3 * 12 and forecasts["mean"].notna().all()
        assert set(forecasts["model_version"].astype(str)) == {"1"}

        # The run's state lives in Prefect's PostgreSQL database.
        assert _psql(postgres_databases["prefect"],
                     f"select d.name, fr.state_type from flow_run fr join deployment d on d.id = fr.deployment_id where fr.id = '{run['id']}'") == "predict-tiny|COMPLETED"
        assert _psql(postgres_databases["prefect"],
                     "select s.schedule->>'cron', s.schedule->>'timezone' from deployment_schedule s join deployment d on d.id = s.deployment_id where d.name = 'predict-tiny'") == "0 0 1 1 *|UTC"
        assert not list(tmp_path.glob("**/*.db")), "no SQLite fallback"
    finally:
        for proc, out in reversed(procs):
            # Each server runs in its own session: stop its whole group (uvicorn/gunicorn children included).
            for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            out.close()
