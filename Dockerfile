# The project image: runs the CLI, the Prefect worker, `prefect server` and `mlflow server`.
# CPU by default:   docker build -t forecasting .
# CUDA:             docker build -t forecasting:cuda \
#                     --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 \
#                     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
#   (a CUDA base has no Python of its own: the python3 it brings is used through a venv)
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
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

RUN if ! command -v python3 >/dev/null || ! python3 -m venv --help >/dev/null 2>&1; then \
        apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/venv

WORKDIR /app
# torch first, from the index that matches the base (CPU wheels by default: no multi-GB CUDA download).
COPY constraints.txt pyproject.toml README.md ./
RUN pip install --index-url "${TORCH_INDEX_URL}" --extra-index-url https://pypi.org/simple "torch==${TORCH_VERSION}"
COPY forecasting ./forecasting
COPY pipelines ./pipelines
COPY configs ./configs
# The servers' drivers: PostgreSQL for MLflow (psycopg2) and Prefect (asyncpg, a prefect
# dependency), boto3 for MLflow's S3 (MinIO) artifact store.
RUN grep -v '^torch==' constraints.txt > /tmp/constraints.txt \
    && pip install -c /tmp/constraints.txt . "psycopg2-binary==2.9.13" "boto3>=1.34,<2" \
    && python -c "import forecasting.cli, pipelines.deployments, psycopg2, asyncpg, boto3"

RUN useradd --create-home --uid 1000 forecasting && mkdir -p /data && chown forecasting /data
USER forecasting
VOLUME ["/data"]
CMD ["forecast", "--help"]
