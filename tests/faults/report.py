"""Run the fault-injection suite and print its summary table (issue 19's "Must show").

    python -m tests.faults.report            # in-process cases: bad inputs, network faults (~1 min)
    python -m tests.faults.report --kills    # plus kill -9 / SIGTERM of real subprocesses (~5 min)

Prints a Markdown table per case and the totals: N inputs, M clear errors, K lost (a torn version or file,
rows gone); F faults, S survived, orphaned files (a temp file left beside whole data), hangs and tracebacks. Writes nothing into the tree; exits 1 when any case hangs, tracebacks or loses data.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", action="store_true", help="also kill -9 / SIGTERM real subprocesses (minutes)")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="faults-"))
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    os.environ.setdefault("FORECASTING_HOME", str(root / "home"))
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    import logging

    logging.disable(logging.WARNING)  # the retries' warnings would drown the table

    from tests.faults.cases import Outcome, quick_cases, run_case
    from tests.faults.server import FaultServer

    rows: list[tuple[str, str, str, float, str]] = []
    with FaultServer(trickle_interval=0.5, silent_seconds=60.0) as server:
        for i, case in enumerate(quick_cases()):
            (root / f"case{i}").mkdir()
            outcome: Outcome = run_case(case, root / f"case{i}", server)
            rows.append((case.kind, case.name, outcome.result, outcome.seconds, outcome.detail))
        if args.kills:
            rows += _kill_rows(root, server)

    print("| kind | case | result | seconds | what it said |\n|---|---|---|---|---|")
    for kind, name, result, seconds, detail in rows:
        print(f"| {kind} | {name} | {result} | {seconds:.1f} | {detail.replace('|', '/')[:140]} |")
    inputs = [r for r in rows if r[0] == "input"]
    faults = [r for r in rows if r[0] == "fault"]
    clear = sum(r[2] in ("clear error", "survived") for r in inputs)
    lost = sum(r[2] == "lost" for r in rows)
    survived = sum(r[2] in ("clear error", "survived") for r in faults)
    hangs = sum(r[2] == "hang" for r in rows)
    tracebacks = sum(r[2] == "traceback" for r in rows)
    orphaned = sum(r[2] == "orphaned" for r in rows)
    print()
    print("| inputs N | clear errors M | lost K | faults F | survived S | orphaned files | hangs | tracebacks |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {len(inputs)} | {clear} | {lost} | {len(faults)} | {survived} | {orphaned} | {hangs} | {tracebacks} |")
    return 1 if lost or hangs or tracebacks or orphaned else 0


def _kill_rows(root: Path, server) -> list[tuple[str, str, str, float, str]]:  # noqa: ANN001 - a FaultServer
    from tests.faults import kills

    rows = []
    for scenario in ("kill_training", "kill_registration", "kill_promotion", "kill_predict"):
        started = time.monotonic()
        try:
            problems = getattr(kills, scenario)(root / scenario)
        except Exception as exc:  # noqa: BLE001 - the harness itself failing is reported, not raised
            problems = [f"harness: {exc}"]
        torn = [p for p in problems if not p.startswith("leftover")]
        result = "survived" if not problems else ("lost" if torn else "orphaned")
        rows.append(("fault", f"{scenario.replace('_', ' -9 ', 1)} + rerun", result, time.monotonic() - started,
                     "; ".join(problems) or "nothing torn, orphaned or duplicated"))
    started = time.monotonic()
    before = server.seen("trickle")
    proc = kills.sigterm_during_fetch(root / "sigterm", server.url)
    waited = time.monotonic() + 180
    while server.seen("trickle") == before and proc.poll() is None and time.monotonic() < waited:
        time.sleep(0.2)
    time.sleep(1.0)
    problems = kills.finish_sigterm(proc, root / "sigterm", bound=20.0)
    result = "survived" if not problems else ("hang" if "still alive" in problems[0] else "traceback")
    rows.append(("fault", "SIGTERM during a trickling fetch (forecast ingest)", result, time.monotonic() - started,
                 "; ".join(problems) or "stopped, exit non-zero, no traceback"))
    return rows


if __name__ == "__main__":
    sys.exit(main())
