"""Quickstart flow: ingest the bundled data, then train and predict each config in turn."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.artifacts import create_table_artifact

from pipelines.ingest import ingest_flow
from pipelines.predict import predict_flow
from pipelines.train import train_flow


def _run_name() -> str:
    """``quickstart-weather+stocks``: the configs it trains, by file name."""
    from prefect.runtime import flow_run

    paths = flow_run.parameters.get("config_paths") or []
    return "quickstart-" + ("+".join(Path(p).stem for p in paths) or "nothing")


@flow(name="quickstart", flow_run_name=_run_name)
def quickstart_flow(config_paths: list[str], home: str | None = None) -> dict:
    """The three flows in order. Trainings run one after another: two at once thrash 2 cores.

    Each step is its own flow run (with its own name and artifact); this run's table artifact
    lists every model, whether it was promoted, and where its forecasts are. A model whose every
    version lost to the promotion gate has no champion: it gets no forecasts, and the summary says why.
    """
    ingested = ingest_flow(home=home)
    trained, predicted = [], []
    for path in config_paths:
        summary = train_flow(path, home=home)
        trained.append(summary)
        if not summary["has_champion"]:
            predicted.append({"name": summary["name"], "skipped": f"no champion: {summary['reason']}"})
            continue
        predicted.append(predict_flow(summary["name"], home=home))
    rows = [
        {"model": t["name"], "version": t["version"], "promoted": t["promoted"],
         "val_mae": t["metrics"].get("val_mae"), "val_baseline_mae": t["metrics"].get("val_baseline_mae"),
         "origin": p.get("origin"), "series": p.get("series"), "forecasts": p.get("path") or p["skipped"]}
        for t, p in zip(trained, predicted, strict=True)
    ]
    create_table_artifact(rows, key="quickstart", description="Models trained by the quickstart and their forecasts")
    return {"ingested": ingested, "trained": trained, "predicted": predicted}
