# The project image: runs the CLI, the Prefect worker, `prefect server` and `mlflow server`.
# CPU by default:   docker build -t forecasting .
# CUDA:             docker build -t forecasting:cuda \
#                     --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 \
#                     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
#   (a CUDA base has no Python of its own: the python3 it brings is used through a venv)
# Offline torch: put the wheel in docker/local/ (pip looks there first), and a TLS-intercepting
# proxy's CA as docker/local/ca.crt; `make stack-test` does both.
#
# Two stages: the build stage installs into /opt/venv (pip, wheels and build files stay behind),
# the runtime stage copies only the venv and the sources. Both start from the same base, so the
# venv's interpreter path is the same in both.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN if ! command -v python3 >/dev/null || ! python3 -m venv --help >/dev/null 2>&1; then \
        apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/venv

WORKDIR /app
# torch first, from the index that matches the base (CPU wheels by default: no multi-GB CUDA
# download), or from a wheel placed in docker/local/ (this stage only: it never reaches the image).
COPY docker/local/ /local/
COPY constraints.txt pyproject.toml README.md ./
RUN if [ -f /local/ca.crt ]; then export PIP_CERT=/local/ca.crt; fi \
    && pip install --find-links /local --index-url "${TORCH_INDEX_URL}" --extra-index-url https://pypi.org/simple "torch==${TORCH_VERSION}"
COPY forecasting ./forecasting
COPY pipelines ./pipelines
COPY configs ./configs
# The servers' drivers: PostgreSQL for MLflow (psycopg2) and Prefect (asyncpg, a prefect
# dependency), boto3 for MLflow's S3 (MinIO) artifact store. The project is installed editable,
# so the code in /app (and the configs beside it, which the flows find there) is what runs.
RUN if [ -f /local/ca.crt ]; then export PIP_CERT=/local/ca.crt; fi \
    && grep -v '^torch==' constraints.txt > /tmp/constraints.txt \
    && pip install -c /tmp/constraints.txt -e . "psycopg2-binary==2.9.13" "boto3>=1.34,<2" \
    && python -c "import forecasting.cli, pipelines.deployments, psycopg2, asyncpg, boto3" \
    && find /opt/venv /app -name __pycache__ -prune -exec rm -rf {} +
# What the wheels ship but a service never runs (about 190 MB): torch's C++ test binaries and
# headers (the headers serve torch.compile and C++ extensions, which this project does not use).
RUN torch=$(python -c "import importlib.util; print(importlib.util.find_spec('torch').submodule_search_locations[0])") \
    && rm -rf "$torch/test" "$torch/include" \
    && find "$torch/bin" -type f ! -name torch_shm_manager -delete \
    && python -c "import torch, pytorch_lightning; torch.nn.LSTM(2, 2)(torch.zeros(1, 3, 2))"

FROM ${BASE_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    FORECASTING_HOME=/data \
    PREFECT_HOME=/data/prefect \
    MPLBACKEND=Agg \
    DO_NOT_TRACK=true \
    MLFLOW_DISABLE_TELEMETRY=true \
    PREFECT_SERVER_ANALYTICS_ENABLED=false
# The venv's python is a link to the base's python3: a base without one gets Debian's (no pip, no venv).
RUN if ! command -v python3 >/dev/null; then \
        apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && useradd --create-home --uid 1000 forecasting && mkdir -p /data && chown forecasting /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
# Refuses to start with an empty or placeholder (CHANGE-ME) password: see the script.
COPY docker/entrypoint.sh /usr/local/bin/forecasting-entrypoint
WORKDIR /app
USER forecasting
VOLUME ["/data"]
ENTRYPOINT ["forecasting-entrypoint"]
CMD ["forecast", "--help"]
