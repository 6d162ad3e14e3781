"""Rows/s and peak RSS of a big CSV ingested through the files source (issue 19 item 5).

    .venv/bin/python -m benchmarks.ingest_memory                          # 1M rows
    .venv/bin/python -m benchmarks.ingest_memory --rows 1000000 10000000  # and 10M
    .venv/bin/python -m benchmarks.ingest_memory --rows 20000 --series 20 --json

For each size a CSV of ``rows`` rows (``--series`` hourly series, interleaved
hour by hour, naive timestamps read as UTC) is written to a temporary folder,
then ingested in a fresh child process, through the real ``FilesConfig`` ->
``FileSource`` -> ``ingest`` path, into an empty store in the same folder.
The child reports its own peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``)
and its RSS after the imports, so the figures are the ingest's, not the parent's.

The reference (``--reference``, on by default) is the first step of the old
whole-file path measured the same way: ``pandas.read_csv`` of the whole file
with the options the source used (every cell as text). It is a lower bound of
what that path held, since it then parsed and validated the whole frame.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHUNK = 500_000


def cpu_flags() -> str:
    """The vector extensions that matter for the figures (``avx512_bf16``, ``avx2``), as /proc/cpuinfo names them."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    first = text.split("\n\n", 1)[0]
    found = sorted(set(re.findall(r"\b(avx512_bf16|avx2)\b", first)))
    return " ".join(found) or "none"


def write_csv(path: Path, rows: int, series: int) -> int:
    """``rows`` rows of ``series`` hourly series, interleaved; returns the file's size in bytes."""
    import numpy as np
    import pandas as pd

    start = pd.Timestamp("2020-01-01")
    with path.open("w") as handle:
        handle.write("series_id,timestamp,target\n")
        for lo in range(0, rows, _CHUNK):
            k = np.arange(lo, min(rows, lo + _CHUNK))
            hour, sid = k // series, k % series
            stamps = (start + pd.to_timedelta(hour, unit="h")).strftime("%Y-%m-%d %H:%M:%S")
            values = np.round(10 * np.sin(hour / 24 * 2 * np.pi) + sid % 17 + (k % 7) * 0.1, 3)
            frame = pd.DataFrame({"series_id": [f"s{s:05d}" for s in sid], "timestamp": stamps, "target": values})
            frame.to_csv(handle, header=False, index=False)
    return path.stat().st_size


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _rss() -> int:
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def child(mode: str, path: str, store_dir: str, batch_rows: int | None) -> dict:
    """One measurement in this (fresh) process: ``streamed`` ingest or the ``reference`` whole-file read."""
    if mode == "streamed":
        from forecasting.config.ingest import parse_ingest_config
        from forecasting.data.ingest import ingest, raise_for_failures
        from forecasting.data.store import ObservationStore

        raw = {"source": "files", "path": path, "dataset": "bench", "freq": "h", "timezone": "UTC", "end": "2099-12-31"}
        if batch_rows:
            raw["read_batch_rows"] = batch_rows
        config = parse_ingest_config(raw)
        store = ObservationStore(store_dir)
        config.build_source()  # imports the source's readers (pyarrow's CSV and Parquet) before the baseline
        baseline = _rss()
        started = time.perf_counter()
        reports = ingest(config, store)
        seconds = time.perf_counter() - started
        raise_for_failures(reports)
        landed = sum(r.landed for r in reports)
        extra = {"series": len(reports), "quarantined": sum(r.quarantined for r in reports), "read_batch_rows": config.read_batch_rows}
    else:
        import pandas as pd

        baseline = _rss()
        started = time.perf_counter()
        frame = pd.read_csv(path, dtype="str", keep_default_na=False, skipinitialspace=True)
        seconds = time.perf_counter() - started
        landed, extra = len(frame), {}
    return {"mode": mode, "rows": landed, "seconds": seconds, "peak_rss": _peak(), "rss_after_imports": baseline, **extra}


def measure(mode: str, path: Path, store_dir: Path, batch_rows: int | None) -> dict:
    """Run ``child`` in a fresh interpreter (its own peak RSS) and return what it printed."""
    command = [sys.executable, "-m", "benchmarks.ingest_memory", "--child", mode, str(path), str(store_dir)]
    if batch_rows:
        command += ["--batch-rows", str(batch_rows)]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "PREFECT_LOGGING_LEVEL": "WARNING"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parent.parent, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} child failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(rows: int, series: int, *, batch_rows: int | None = None, reference: bool = True) -> dict:
    """Write the file, then measure the streamed ingest (and the reference) on it; the folder is removed after."""
    with tempfile.TemporaryDirectory(prefix="ingest-memory-") as tmp:
        path = Path(tmp) / "big.csv"
        size = write_csv(path, rows, series)
        out = {"rows": rows, "series": series, "file_bytes": size, "cpu_flags": cpu_flags()}
        for mode in ("streamed", "reference") if reference else ("streamed",):
            result = measure(mode, path, Path(tmp) / f"store-{mode}", batch_rows)
            result["rows_per_s"] = result["rows"] / result["seconds"] if result["seconds"] else 0.0
            result["peak_over_file"] = result["peak_rss"] / size
            result["growth_over_file"] = (result["peak_rss"] - result["rss_after_imports"]) / size
            out[mode] = result
    return out


def _line(result: dict) -> str:
    mib = 1 << 20
    lines = [f"{result['rows']:,} rows, {result['series']} series, file {result['file_bytes'] / mib:.1f} MiB, cpu flags: {result['cpu_flags']}"]
    for mode in ("streamed", "reference"):
        r = result.get(mode)
        if r is None:
            continue
        what = "files-source ingest (streamed)" if mode == "streamed" else "pandas.read_csv whole file (old path's first step)"
        lines.append(
            f"  {what}: {r['rows_per_s']:,.0f} rows/s ({r['seconds']:.1f} s), peak RSS {r['peak_rss'] / mib:.0f} MiB "
            f"= {r['peak_over_file']:.2f} x file (growth over imports {(r['peak_rss'] - r['rss_after_imports']) / mib:.0f} MiB "
            f"= {r['growth_over_file']:.2f} x file)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--series", type=int, default=1000, help="hourly series, interleaved (default 1000)")
    parser.add_argument("--batch-rows", type=int, default=None, help="files config read_batch_rows (default: the config's)")
    parser.add_argument("--no-reference", action="store_true", help="skip the whole-file pandas.read_csv reference")
    parser.add_argument("--json", action="store_true", help="print one JSON line per size instead of text")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "PATH", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child, args.batch_rows)))
        return []
    results = []
    for rows in args.rows:
        result = run(rows, max(1, min(args.series, rows)), batch_rows=args.batch_rows, reference=not args.no_reference)
        print(json.dumps(result) if args.json else _line(result), flush=True)
        results.append(result)
    return results


if __name__ == "__main__":
    main()
