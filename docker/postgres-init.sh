#!/bin/sh
# Runs once, on the first start of an empty PostgreSQL volume (docker-entrypoint-initdb.d):
# one database for MLflow's backend store, one for Prefect's, owned by POSTGRES_USER.
set -eu
for db in "${MLFLOW_DB:-mlflow}" "${PREFECT_DB:-prefect}"; do
  echo "creating database $db"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -c "CREATE DATABASE \"$db\" OWNER \"$POSTGRES_USER\";"
done
