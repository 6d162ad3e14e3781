"""Quickstart flow: ingest the bundled data, then train and predict each config in turn."""

from __future__ import annotations

from prefect import flow

from pipelines.ingest import ingest_flow
from pipelines.predict import predict_flow
from pipelines.train import train_flow


@flow(name="quickstart")
def quickstart_flow(config_paths: list[str], home: str | None = None) -> dict:
    """The three flows in order. Trainings run one after another: two at once thrash 2 cores."""
    ingested = ingest_flow(home=home)
    trained, predicted = [], []
    for path in config_paths:
        summary = train_flow(path, home=home)
        trained.append(summary)
        predicted.append(predict_flow(summary["name"], home=home))
    return {"ingested": ingested, "trained": trained, "predicted": predicted}
