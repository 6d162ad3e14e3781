"""docker-compose.yml brought up for real: `make stack-test` (opt-in; needs root, Debian's docker.io
and the package index; about 11 minutes on 2 cores, half of it building images).

The steps, in file order, share one stack (a module-scoped fixture):

1. a private dockerd (its own data root and socket under a work folder; no iptables rules);
2. images built here, since no registry is reachable: a Debian bookworm base from debootstrap
   (cached), a Python base on it, PostgreSQL from Debian's package, moto's S3 server as the
   stand-in for MinIO, and the project image through the compose file's own build section, all
   handed to the compose file through its image variables (BASE_IMAGE, POSTGRES_IMAGE, ...);
3. `docker-compose up -d` with a test env file (random secrets, free loopback ports);
4. a bounded wait until every service is healthy and the one-shot services exited 0;
5. every deployment of configs/schedules.yaml registered on the work pool with its schedule;
6. ingest -> train -> predict triggered through the Prefect API and run by a worker container
   (the offline variants: bundled Seattle temperatures instead of Open-Meteo, a tiny config);
7. a champion in the MLflow server: registry rows in PostgreSQL, model files in the S3 bucket;
8. the forecast file the worker wrote to the shared data volume;
9. two workers, two trainings of one model at once: exactly one champion;
10. `docker-compose down -v`, the daemon stopped, its folder (images, containers, volumes) removed.

The S3 stand-in is moto's server mode, not MinIO (there is no MinIO build without a registry):
docker/compose.stack-test.yml swaps it in and docker-compose.yml keeps MinIO for users. The
workers of the test take runs from their own work queue only, so the deployments' schedules
(live ingests that need the internet) never run here.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.stack.harness import PROJECT_IMAGE, REPO, Stack, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("FORECASTING_STACK_TEST") != "1",
                       reason="the compose stack under a private dockerd: run `make stack-test`"),
]

QUEUE = "stack-test"
FIXTURES = "/stack-test"  # tests/stack/fixtures inside the workers
MODEL = "stack-weather-hourly"  # tests/stack/fixtures/weather-tiny.yaml
RUN_TIMEOUT = float(os.environ.get("STACK_RUN_TIMEOUT", "900"))  # seconds per flow run, queueing included
REPORT: dict = {}  # figures for the summary line printed at the end


@pytest.fixture(scope="module")
def stack():
    work = Path(os.environ.get("STACK_WORK") or "/tmp/forecasting-stack-test")
    cache = Path(os.environ["STACK_CACHE"])
    stack = Stack(work=work, cache=cache, logs=Path(os.environ.get("STACK_LOGS") or cache / "logs"))
    if os.environ.get("STACK_REUSE") == "1":
        # Debugging a step: attach to the daemon and env file a previous run left in STACK_WORK
        # (built, maybe up); build nothing, tear nothing down.
        stack.env = dict(line.split("=", 1) for line in stack.env_file.read_text().splitlines() if "=" in line)
        REPORT["image_sizes"] = stack.image_sizes()
        yield stack
        return
    if work.exists():  # a run that died without its teardown
        stack.remove_work()
    started = time.monotonic()
    try:
        stack.start_daemon()
        stack.write_env()
        REPORT["build_seconds"] = stack.build_images()
        REPORT["image_sizes"] = stack.image_sizes()
        yield stack
    finally:
        try:
            if stack._dockerd is not None:
                stack.save_logs()
                down = stack.compose("down", "-v", "--remove-orphans", "--timeout", "20", timeout=300, check=False)
                REPORT["down"] = down.returncode
                REPORT["left_after_down"] = stack.docker("ps", "-aq", timeout=60, check=False).stdout.split()
        finally:
            stack.stop_daemon()
            stack.remove_work()
            REPORT["wall_seconds"] = round(time.monotonic() - started)
            REPORT["work_removed"] = not work.exists()
            print("\nSTACK REPORT " + json.dumps(REPORT, sort_keys=True))
            (stack.logs / "report.json").write_text(json.dumps(REPORT, indent=2, sort_keys=True))


@pytest.fixture(scope="module")
def prefect(stack):
    """A synchronous Prefect client of the stack's API (published on a loopback port)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{stack.env['PREFECT_PORT']}/api"}):
        with get_client(sync_client=True) as client:
            yield client


def _mlflow(stack: Stack, path: str, **params) -> dict:
    url = f"http://127.0.0.1:{stack.env['MLFLOW_PORT']}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def _psql(stack: Stack, sql: str) -> str:
    return stack.exec("postgres", "psql", "-U", stack.env["POSTGRES_USER"], "-d", stack.env["MLFLOW_DB"], "-tAc", sql).strip()


def _trigger(prefect, deployment: str, parameters: dict | None = None):
    """A flow run of a deployment on the test's queue (parameters merged over the deployment's)."""
    found = prefect.read_deployment_by_name(deployment)
    return prefect.create_flow_run_from_deployment(found.id, parameters={**found.parameters, **(parameters or {})},
                                                   work_queue_name=QUEUE)


def _wait_final(stack: Stack, prefect, run_ids: list, timeout: float = RUN_TIMEOUT) -> list:
    def final():
        runs = [prefect.read_flow_run(run_id) for run_id in run_ids]
        return runs if all(r.state and r.state.is_final() for r in runs) else None

    def status():
        return ", ".join(f"{r.name}: {r.state.type.value if r.state else None}" for r in (prefect.read_flow_run(i) for i in run_ids)) \
            + "\n" + stack.logs_of("worker", tail=80)

    return wait_for(f"flow runs {[str(i) for i in run_ids]} to finish", final, timeout, interval=5, on_timeout=status)


def _completed(stack: Stack, runs: list) -> None:
    failed = [f"{r.name}: {r.state.type.value} {r.state.message}" for r in runs if not r.state.is_completed()]
    assert not failed, "\n".join(failed) + "\n" + stack.logs_of("worker", tail=120)


# --- 2-4 ----------------------------------------------------------------------------------------


def test_images_are_built_and_the_project_image_stays_small(stack):
    sizes = REPORT["image_sizes"]
    for name in ("forecasting-stack/debian:bookworm", "forecasting-stack/python:3.11-bookworm", "forecasting-stack/postgres:15",
                 "forecasting-stack/s3-standin:moto", PROJECT_IMAGE):
        assert name in sizes, sizes
    # CPU torch only, no pip cache, no build files: about 1.5 GB (a CUDA torch alone is several GB).
    size = stack.image_bytes(PROJECT_IMAGE)
    REPORT["project_image_bytes"] = size
    assert size < 2.5e9, sizes
    # The wheel and CA that entered the build stage are not in the image.
    listing = stack.docker("run", "--rm", "--entrypoint", "sh", PROJECT_IMAGE, "-c", "ls /local /wheels 2>&1; pip cache dir 2>&1; id -un",
                           timeout=120, check=False).stdout
    assert "No such file" in listing and "forecasting" in listing.split()[-1], listing


def test_placeholder_or_empty_secrets_are_refused(stack, tmp_path):
    # The project image's entrypoint: one line naming each bad variable, exit 78, the command never runs.
    done = stack.docker("run", "--rm", "-e", "PGPASSWORD=CHANGE-ME", "-e", "AWS_SECRET_ACCESS_KEY=", PROJECT_IMAGE,
                        "echo", "started", timeout=120, check=False)
    assert done.returncode == 78, done
    assert "started" not in done.stdout
    assert "PGPASSWORD(placeholder CHANGE-ME)" in done.stderr and "AWS_SECRET_ACCESS_KEY(empty)" in done.stderr
    assert stack.docker("run", "--rm", "-e", "PGPASSWORD=a-real-one", PROJECT_IMAGE, "echo", "started", timeout=120).stdout.strip() == "started"
    # .env.example as it ships: the servers refuse to start on its placeholders.
    example = tmp_path / "example.env"
    example.write_text((REPO / ".env.example").read_text() + "".join(
        f"{k}={v}\n" for k, v in stack.env.items() if k.endswith("_IMAGE") or k.endswith("_PORT")))
    done = stack.compose("run", "--rm", "--no-deps", "prefect-server", "true", env_file=example, timeout=120, check=False)
    assert done.returncode == 78, done
    assert "PREFECT_SERVER_DATABASE_PASSWORD(placeholder CHANGE-ME)" in done.stderr, done.stderr
    # An empty password: compose itself refuses (${POSTGRES_PASSWORD:?...}).
    empty = tmp_path / "empty.env"
    empty.write_text(example.read_text().replace("POSTGRES_PASSWORD=CHANGE-ME", "POSTGRES_PASSWORD="))
    done = stack.compose("config", env_file=empty, timeout=60, check=False)
    assert done.returncode != 0 and "set POSTGRES_PASSWORD in .env" in done.stderr, done


def test_up_and_healthy(stack):
    start = time.monotonic()
    stack.compose("up", "-d", "--no-build", timeout=1200)
    states = stack.wait_healthy(timeout=600)
    REPORT["up_seconds"] = round(time.monotonic() - start)
    services = {name.split("_")[1] for name in states}
    assert services == {"postgres", "minio", "create-bucket", "mlflow", "prefect-server", "deploy", "worker"}, states
    # The secrets reached the servers as variables of their own, never inside a URL.
    password = stack.env["POSTGRES_PASSWORD"]
    for service, url_key, password_key in (("mlflow", "MLFLOW_BACKEND_STORE_URI", "PGPASSWORD"),
                                           ("worker", "FORECASTING_LOCK_DATABASE_URL", "PGPASSWORD"),
                                           ("prefect-server", "PREFECT_SERVER_DATABASE_HOST", "PREFECT_SERVER_DATABASE_PASSWORD")):
        env = dict(line.split("=", 1) for line in stack.exec(service, "env").splitlines() if "=" in line)
        assert env[password_key] == password, service
        assert password not in env[url_key] and "PREFECT_API_DATABASE_CONNECTION_URL" not in env, service


# --- 5 ------------------------------------------------------------------------------------------


def test_deploy_registered_every_deployment_with_its_schedule(stack, prefect, tmp_path):
    from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName

    from pipelines.deployments import PATH_PARAMETERS, ScheduleConfig

    # The deploy service read the schedules baked into the image (configs/schedules.yaml at build time).
    expected = ScheduleConfig.model_validate(yaml.safe_load(stack.exec("mlflow", "cat", "/app/configs/schedules.yaml")))
    pool = stack.env["WORK_POOL"]
    deployments = prefect.read_deployments(work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])))
    by_name = {d.name: d for d in deployments}
    assert set(by_name) == set(expected.deployments)
    flows = {f.id: f.name for f in prefect.read_flows()}
    for name, spec in expected.deployments.items():
        deployment = by_name[name]
        assert flows[deployment.flow_id] == spec.flow, name
        assert deployment.work_pool_name == pool
        assert deployment.entrypoint.startswith("pipelines."), deployment.entrypoint
        [schedule] = deployment.schedules
        assert schedule.schedule.cron == spec.cron, name
        assert schedule.schedule.timezone == (spec.timezone or expected.timezone), name
        assert schedule.active != spec.paused, name
        for key, value in spec.parameters.items():  # relative config paths became the image's /app/configs/...
            want = f"/app/configs/{value}" if key in PATH_PARAMETERS and not str(value).startswith("/") else value
            assert deployment.parameters[key] == want, (name, key, deployment.parameters[key])
    from prefect.exceptions import ObjectAlreadyExists

    try:  # the queue the test's runs go to (the workers may have created it already)
        prefect.create_work_queue(name=QUEUE, work_pool_name=pool)
    except ObjectAlreadyExists:
        pass


# --- 6-8 ----------------------------------------------------------------------------------------


def test_ingest_train_predict_through_the_prefect_api(stack, prefect):
    start = time.monotonic()
    steps = [
        ("ingest-source/ingest-weather", {"config": f"{FIXTURES}/ingest-seattle.yaml"}),
        ("train/retrain-weather", {"config_path": f"{FIXTURES}/weather-tiny.yaml"}),
        ("predict/predict-weather", {"model_name": MODEL}),
    ]
    runs = []
    for deployment, parameters in steps:
        step = time.monotonic()
        [run] = _wait_final(stack, prefect, [_trigger(prefect, deployment, parameters).id])
        _completed(stack, [run])
        assert run.work_queue_name == QUEUE
        REPORT.setdefault("run_seconds", {})[deployment] = round(time.monotonic() - step)
        runs.append(run)
    REPORT["pipeline_seconds"] = round(time.monotonic() - start)
    # Run by a worker container: each worker is named after its container's hostname.
    workers = {f"worker-{c['Config']['Hostname']}" for c in stack.containers("worker")}
    for run in runs:
        assert run.labels.get("prefect.worker.name") in workers, (run.name, run.labels, workers)


def test_champion_in_the_mlflow_server_with_postgres_metadata_and_s3_artifacts(stack):
    name = MODEL
    version = _mlflow(stack, "registered-models/alias", name=name, alias="champion")["model_version"]
    tags = {t["key"]: t["value"] for t in version.get("tags", [])}
    assert tags.get("promotion.decision") == "promoted", tags
    # The registry lives in PostgreSQL ...
    assert _psql(stack, f"select version from registered_model_aliases where name = '{name}' and alias = 'champion'") == version["version"]
    assert int(_psql(stack, "select count(*) from runs")) >= 1
    # ... and the model's files in the S3 bucket, written through the server's artifact proxy.
    listing = stack.exec("mlflow", "python", "-c", (
        "import os, boto3; s3 = boto3.client('s3', endpoint_url=os.environ['MLFLOW_S3_ENDPOINT_URL'], region_name='us-east-1'); "
        "pages = s3.get_paginator('list_objects_v2').paginate(Bucket=os.environ['MLFLOW_BUCKET'], Prefix='artifacts/'); "
        "print('\\n'.join(o['Key'] for p in pages for o in p.get('Contents', [])))"
    ))
    keys = listing.split()
    weights = [k for k in keys if k.endswith("weights.pt")]
    assert weights and any(k.endswith("MLmodel") for k in keys), keys[:50]
    model_id = version.get("model_id")
    if model_id:  # MLflow 3: the version's logged model, under its id
        assert any(model_id in k for k in weights), (model_id, weights)


def test_forecast_files_written_by_the_worker(stack):
    champion = _mlflow(stack, "registered-models/alias", name=MODEL, alias="champion")["model_version"]["version"]
    out = stack.exec("worker", "python", "-c", (
        "import json, pathlib, pandas as pd; files = sorted(pathlib.Path('/data/forecasts').rglob('*.parquet')); "
        "frames = [pd.read_parquet(f) for f in files]; "
        "print(json.dumps([{'file': str(f), 'rows': len(d), 'series': sorted(d['series_id'].astype(str).unique()), "
        "'versions': sorted(d['model_version'].astype(str).unique()), 'mean_ok': bool(d['mean'].notna().all())} "
        "for f, d in zip(files, frames)]))"
    ))
    files = json.loads(out.strip().splitlines()[-1])
    assert len(files) == 1, files
    [written] = files
    assert MODEL in written["file"]
    assert written["series"] == ["weather/seattle-hourly"] and written["rows"] == 24 and written["mean_ok"], written
    assert written["versions"] == [champion]


# --- 9 ------------------------------------------------------------------------------------------


def test_two_workers_two_trainings_of_one_model_leave_exactly_one_champion(stack, prefect):
    stack.compose("up", "-d", "--no-build", "--no-recreate", "--scale", "worker=2", timeout=600)
    stack.wait_healthy(timeout=300)
    workers = stack.containers("worker")
    assert len(workers) == 2
    ids = [_trigger(prefect, "train/retrain-weather", {"config_path": f"{FIXTURES}/race-tiny.yaml"}).id for _ in range(2)]
    runs = _wait_final(stack, prefect, ids)
    _completed(stack, runs)
    # One on each worker (each takes one run at a time), running at the same time.
    names = {r.labels.get("prefect.worker.name") for r in runs}
    assert names == {f"worker-{c['Config']['Hostname']}" for c in workers}, [r.labels for r in runs]
    a, b = runs
    assert a.start_time < b.end_time and b.start_time < a.end_time, [(r.start_time, r.end_time) for r in runs]

    name = "stack-race"
    versions = _mlflow(stack, "model-versions/search", filter=f"name='{name}'")["model_versions"]
    assert len(versions) == 2
    tags = {v["version"]: {t["key"]: t["value"] for t in v.get("tags", [])} for v in versions}
    champion = _mlflow(stack, "registered-models/alias", name=name, alias="champion")["model_version"]["version"]
    promoted = sorted((v for v, t in tags.items() if t.get("promotion.decision") == "promoted"), key=int)
    # The first through the promotion lock found no champion; the second was judged against it,
    # never against an empty registry: a tie is rejected, a better one replaces it.
    first = [v for v in promoted if not tags[v].get("promotion.previous_champion")]
    assert len(first) == 1, tags
    other = next(v for v in tags if v != first[0])
    if other in promoted:
        assert tags[other]["promotion.previous_champion"] == first[0] and champion == other, tags
    else:
        assert tags[other].get("promotion.decision") == "rejected" and tags[other].get("promotion.compared_with") == first[0], tags
        assert champion == first[0]
    assert _psql(stack, f"select count(*) from registered_model_aliases where name = '{name}' and alias = 'champion'") == "1"
    REPORT["race"] = {"champion": champion, "decisions": {v: t.get("promotion.decision") for v, t in tags.items()}}


# --- 10 -----------------------------------------------------------------------------------------


def test_down_removes_containers_and_volumes(stack):
    stack.save_logs()
    stack.compose("down", "-v", "--remove-orphans", "--timeout", "20", timeout=300)
    assert stack.docker("ps", "-aq", timeout=60).stdout.split() == []
    volumes = stack.docker("volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={stack.project}", timeout=60).stdout.split()
    assert volumes == []
    with pytest.raises(OSError):  # nothing answers on the published ports any more
        urllib.request.urlopen(f"http://127.0.0.1:{stack.env['PREFECT_PORT']}/api/health", timeout=5)
