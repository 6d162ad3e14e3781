"""`forecast status`: one screen that answers "is my forecasting healthy?"; ``--json`` gives the same to machines.

Reads only, and never starts a Prefect server: the registry (champion, when and why, its backtest MASE
against the baselines, the last monitoring verdict: ``forecasting.registry.overview``), the observation
store (last ingest, newest timestamp and lag per dataset), the forecasts folder (the last forecast's
origin) and, only when ``PREFECT_API_URL`` names a running server, the next scheduled flow runs.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from forecasting.cli.app import HomeOption, console, error_line, model_or_exit, run_or_exit, setup_home  # imported once app's names exist
from forecasting.ops.health import datasets_status, duration_text, last_forecast, model_problems

NEXT_RUNS = 10


def register(app: typer.Typer) -> None:
    app.command(name="status")(status)


def status(
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Only this model NAME (repeatable); default every registered model.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the same as one JSON document, for machines.")] = False,
    home: HomeOption = None,
) -> None:
    """Is my forecasting healthy? Champions (when and why promoted, backtest MASE vs baselines), last ingest per
    dataset with its lag, last forecast, last monitoring verdict, next scheduled runs. Starts no server."""
    names = [model_or_exit(m, None, allow_alias=False)[0] for m in model] if model else None
    settings = setup_home(home)
    # A status screen must answer soon, even about a tracking server that is down (MLflow's default: 7 retries, minutes).
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    report = collect(settings, names)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")
        return
    _print(report)


def collect(settings: Any, names: list[str] | None = None, *, now: datetime | None = None) -> dict[str, Any]:
    """Everything ``forecast status`` shows, as plain data (the ``--json`` document)."""
    from forecasting.registry import overview  # MLflow: only after setup_home points it at the home

    now = now or datetime.now(UTC)
    overview.configure(settings.mlflow_tracking_uri)
    known = run_or_exit(overview.model_names)
    missing = [n for n in names or [] if n not in known]
    if missing:
        error_line(f"no registered model {', '.join(map(repr, missing))}; registered models: {known or 'none'}")
        raise typer.Exit(1)
    datasets = datasets_status(settings.store_dir, now)
    by_dataset = {d["dataset"]: d for d in datasets}
    models = []
    for entry in run_or_exit(overview.overview, names or known):
        entry["ingest"] = by_dataset.get(entry["dataset"] or "")
        entry["last_forecast"] = last_forecast(settings.forecasts_dir, entry["name"])
        entry["problems"] = model_problems(entry)
        models.append(entry)
    schedule = next_runs(NEXT_RUNS)
    problems = [f"{m['name']}: {p}" for m in models for p in m["problems"]]
    if not known:
        problems.append("no registered model yet: `forecast quickstart`, or `forecast train --config FILE`")
    if schedule.get("error"):
        problems.append(f"Prefect API: {schedule['error']}")
    return {
        "generated_at": now.isoformat(timespec="seconds"),
        "home": str(settings.home),
        "tracking_uri": settings.mlflow_tracking_uri,
        "healthy": not problems,
        "problems": problems,
        "models": models,
        "datasets": datasets,
        "schedule": schedule,
    }


def next_runs(limit: int) -> dict[str, Any]:
    """The next scheduled flow runs, from the Prefect server ``PREFECT_API_URL`` names.

    Without ``PREFECT_API_URL`` there is no server to ask (``forecast serve`` without one runs a temporary
    server that lives and dies with it), and none is started: Prefect is not even imported.
    """
    url = os.environ.get("PREFECT_API_URL", "").strip()
    if not url:
        return {"api_url": None, "runs": None, "error": None,
                "note": "PREFECT_API_URL is not set: no Prefect server to ask for scheduled runs"}
    os.environ.setdefault("PREFECT_API_REQUEST_TIMEOUT", "10")  # a status screen must not hang on a dead server
    os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "1")
    try:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
        from prefect.client.schemas.objects import StateType
        from prefect.client.schemas.sorting import FlowRunSort

        scheduled = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])))
        runs = []
        with get_client(sync_client=True) as client:
            flows: dict[Any, str] = {}
            deployments: dict[Any, str] = {}
            for run in client.read_flow_runs(flow_run_filter=scheduled, sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=limit):
                if run.flow_id not in flows:
                    flows[run.flow_id] = client.read_flow(run.flow_id).name
                if run.deployment_id and run.deployment_id not in deployments:
                    deployments[run.deployment_id] = client.read_deployment(run.deployment_id).name
                start = run.expected_start_time or (run.state.state_details.scheduled_time if run.state else None)
                runs.append({
                    "flow": flows[run.flow_id],
                    "deployment": deployments.get(run.deployment_id),
                    "run": run.name,
                    "expected_start": None if start is None else start.isoformat(),
                    "parameters": run.parameters,
                })
    except Exception as exc:  # noqa: BLE001 - an unreachable server is a finding of the status, not a crash
        return {"api_url": url, "runs": None, "error": " ".join(f"{type(exc).__name__}: {exc}".split())[:300]}
    return {"api_url": url, "runs": runs, "error": None}


def _print(report: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    verdict = ("green", "healthy") if report["healthy"] else ("bold red", f"{len(report['problems'])} problem(s)")
    console.print(Text.assemble("Forecasting status: ", (verdict[1], verdict[0]), f"  ({report['generated_at']}, home {report['home']})"),
                  soft_wrap=True, highlight=False)
    models = Table(title="Models")
    for col in ("model", "champion", "since", "backtest MASE", "best baseline", "last forecast origin", "monitoring"):
        models.add_column(col, no_wrap=True)
    for m in report["models"]:
        champion, backtest, monitoring, forecast = m["champion"], m["backtest"], m["monitoring"], m["last_forecast"]
        best = min(backtest["baselines"].items(), key=lambda kv: kv[1]) if backtest and backtest["baselines"] else None
        verdict_cell = "-" if monitoring is None else (
            f"[red]ALERT[/] {monitoring['at']}" if monitoring["alert"] else f"[green]ok[/] {monitoring['at']}")
        models.add_row(
            m["name"],
            f"v{champion['version']}" if champion else "[red]none[/]",
            (champion["since"] or "-") if champion else "-",
            f"{backtest['model']:.3g}" if backtest else "-",
            f"{best[0]} {best[1]:.3g}" if best else "-",
            forecast["origin"] if forecast else "-",
            verdict_cell,
        )
    if report["models"]:
        console.print(models)
    for m in report["models"]:
        champion, backtest = m["champion"], m["backtest"]
        if champion:
            console.print(Text(f"{m['name']} v{champion['version']}: {champion['decision'] or 'champion'} by "
                               f"{champion['by'] or '?'}: {champion['reason'] or '(no reason recorded)'}"), soft_wrap=True)
        if backtest:
            scores = ", ".join(f"{b} {s:.3g}" for b, s in sorted(backtest["baselines"].items(), key=lambda kv: kv[1]))
            origins = f" over {backtest['origins']} origins" if backtest["origins"] else ""
            console.print(Text(f"{m['name']} backtest MASE{origins} ({backtest['source']}): model {backtest['model']:.3g}; "
                               f"baselines {scores}"), soft_wrap=True)
        for alert in (m["monitoring"] or {}).get("alerts", []):
            console.print(Text.assemble(("alert: ", "bold red"), f"{m['name']}: {alert}"), soft_wrap=True)
    data = Table(title="Datasets")
    for col in ("dataset", "series", "newest", "lag", "last ingest", "source"):
        data.add_column(col, no_wrap=True, justify="right" if col in ("series", "lag") else "left")
    for d in report["datasets"]:
        data.add_row(d["dataset"], str(d["series"]), d["newest"] or "-", d["lag"] or "-", d["last_ingest_at"] or "-",
                     d["last_ingest_source"] or "-")
    console.print(data if report["datasets"] else "no data in the store yet: `forecast ingest`")
    schedule = report["schedule"]
    if schedule["runs"] is not None:
        runs = Table(title=f"Next scheduled runs ({schedule['api_url']})")
        for col in ("expected start", "flow/deployment", "run"):
            runs.add_column(col, no_wrap=True)
        for r in schedule["runs"]:
            runs.add_row(r["expected_start"] or "-", f"{r['flow']}/{r['deployment'] or '-'}", r["run"])
        console.print(runs if schedule["runs"] else "no scheduled runs on the Prefect server", highlight=False)
    else:
        console.print(Text(schedule.get("note") or f"Prefect API unreachable: {schedule['error']}"), soft_wrap=True)
    for problem in report["problems"]:
        console.print(Text.assemble(("problem: ", "bold red"), problem), soft_wrap=True)
