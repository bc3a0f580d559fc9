"""Registry benchmark: ingest rate and query latency at 1,000 runs / 1,000,000 metric rows.

    python bench/registry.py            # 1,000 runs, ~1,000,000 metric rows (about 2-3 minutes here)
    python bench/registry.py --quick    # 100 runs, ~100,000 metric rows

Fabricates run folders in the documented format (testing/sample_runs.py), ingests them all with
``ingest_all`` and times the queries users and the TUI run most, through ``read_query`` (a fresh
read-only connection per query, as in production). Ratios are against a baseline measured in the
same process: the naive ingest (json.loads per line + executemany) on a slice of the same files,
and the targets of issue 7 (each query < 100 ms, ingest >= 200k rows/s). Writes JSON results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from stillhouse.registry.db import read_connection, read_query
from stillhouse.registry.ingest import ingest_all
from stillhouse.testing.sample_runs import FakeRun, fabricate, started_from_id, write_outputs

TASKS = ("nli", "qa", "math", "summarization", "conversation")
TEACHERS = ("openai/gpt-4o-mini", "openai/gpt-4o", "anthropic/claude-sonnet-4-5")
QUERY_TARGET_MS = 100.0
INGEST_TARGET_ROWS_S = 200_000.0


def make_runs(home: Path, runs: int, metric_rows: int) -> list[str]:
    """Write ``runs`` run folders with about ``metric_rows`` rows for the metrics table in all."""
    per_run = metric_rows / runs
    # per train step: 4 train/* metrics + a progress row + eval/loss every 5th step (= 5.2 rows);
    # the generate stage adds one progress row per sample.
    samples = 20
    steps = max(1, round((per_run - samples) / 5.2))
    ids = []
    root = home / "runs"
    for i in range(runs):
        run_id = f"20261101-{i // 3600 % 24:02d}{i // 60 % 60:02d}{i % 60:02d}-bench-{i:05d}"
        spec = FakeRun(
            run_id,
            task=TASKS[i % len(TASKS)],
            teacher_model=TEACHERS[i % len(TEACHERS)],
            seed=i,
            samples=samples,
            train_steps=steps,
            scores={"teacher": 0.9, "baseline": 0.4, "student": 0.5 + (i % 40) / 100},
            config={"train": {"learning_rate": [1e-5, 2e-5, 5e-5, 1e-4][i % 4]}},
        )
        spec.started = started_from_id(run_id) + i
        files = fabricate(spec)
        run_dir = root / run_id
        run_dir.mkdir(parents=True)
        (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in files.events))
        write_outputs(run_dir, files)
        ids.append(run_id)
    return ids


def naive_ingest_rate(run_dirs: list[Path]) -> tuple[float, int]:
    """Baseline: parse every line with json.loads, insert metric rows with executemany."""
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE metrics (run_id VARCHAR, key VARCHAR, context VARCHAR, step BIGINT, value DOUBLE, ts DOUBLE)"
    )
    start = time.perf_counter()
    rows = []
    for run_dir in run_dirs:
        for line in (run_dir / "events.jsonl").read_text().splitlines():
            e = json.loads(line)
            if e["type"] == "metric":
                rows.append((run_dir.name, e["key"], e.get("context"), e.get("step"), e["value"], e["ts"]))
    con.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)", rows)
    seconds = time.perf_counter() - start
    con.close()
    return len(rows) / seconds, len(rows)


def timed(fn: Any, repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--metric-rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100 runs, 100,000 metric rows")
    parser.add_argument("--repeat", type=int, default=7, help="timings per query (median reported)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/registry.json"))
    parser.add_argument("--keep", type=Path, help="build the registry here and keep it")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.metric_rows = 100, 100_000

    home = args.keep or Path(tempfile.mkdtemp(prefix="stillhouse-bench-registry-"))
    try:
        t0 = time.perf_counter()
        ids = make_runs(home, args.runs, args.metric_rows)
        fabricate_s = time.perf_counter() - t0
        print(f"fabricated {len(ids)} run folders in {fabricate_s:.1f} s", file=sys.stderr)

        baseline_dirs = [home / "runs" / rid for rid in ids[: max(1, len(ids) // 100)]]
        baseline_rate, baseline_rows = naive_ingest_rate(baseline_dirs)

        start, cpu_start = time.perf_counter(), time.process_time()
        written = ingest_all(home)
        ingest_s, ingest_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
        with read_connection(home) as con:
            counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("runs", "metrics")}
        noop = timed(lambda: ingest_all(home), 3)

        curve_run = ids[len(ids) // 2]
        queries = {
            "run_summary": ("SELECT * FROM run_summary", None),
            "loss_curve": (
                "SELECT step, value FROM metrics WHERE run_id = ? AND key = 'train/loss' ORDER BY step",
                [curve_run],
            ),
            "metrics_group_by": (
                "SELECT key, context, count(*) AS n, avg(value) AS mean, min(value), max(value) "
                "FROM metrics GROUP BY key, context ORDER BY key",
                None,
            ),
            "metrics_latest": ("SELECT * FROM metrics_latest WHERE key = 'train/loss'", None),
        }
        results: dict[str, Any] = {}
        for name, (sql, params) in queries.items():
            rows = len(read_query(sql, params, home=home, ingest=False))
            results[name] = {
                **timed(lambda s=sql, p=params: read_query(s, p, home=home, ingest=False), args.repeat),
                "rows": rows,
            }
        with_ingest = timed(lambda: read_query("SELECT * FROM run_summary", home=home), args.repeat)

        report = {
            "benchmark": "registry",
            "machine": platform.platform(),
            "python": platform.python_version(),
            "runs": counts["runs"],
            "metric_rows": counts["metrics"],
            "rows_written": written,
            "load_average_1m": os.getloadavg()[0],
            "cpu_cores": os.cpu_count(),
            "ingest_seconds": ingest_s,
            "ingest_cpu_seconds": ingest_cpu_s,
            "ingest_rows_per_s": written / ingest_s,
            "ingest_rows_per_cpu_s": written / ingest_cpu_s,
            "ingest_metric_rows_per_s": counts["metrics"] / ingest_s,
            "baseline_naive_rows_per_s": baseline_rate,
            "baseline_rows": baseline_rows,
            "speedup_vs_naive": (counts["metrics"] / ingest_s) / baseline_rate,
            "ingest_target_rows_per_s": INGEST_TARGET_ROWS_S,
            "noop_ingest": noop,
            "queries": results,
            "run_summary_with_ingest_check": with_ingest,
            "query_target_ms": QUERY_TARGET_MS,
        }
        print_report(report)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nJSON written to {args.out}")
    finally:
        if args.keep is None:
            shutil.rmtree(home, ignore_errors=True)


def print_report(r: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]registry benchmark[/bold]: {r['runs']:,} runs, {r['metric_rows']:,} metric rows, "
        f"{r['rows_written']:,} rows written in all; {r['cpu_cores']} cores, load average {r['load_average_1m']:.1f} "
        "(wall-clock numbers stretch with load)"
    )
    ingest = Table(title="Ingest (ingest_all over every run folder)", title_justify="left")
    for col in ("measure", "value", "ratio"):
        ingest.add_column(col, justify="right" if col != "measure" else "left")
    ingest.add_row(
        "all rows / s",
        f"{r['ingest_rows_per_s']:,.0f}",
        f"{r['ingest_rows_per_s'] / r['ingest_target_rows_per_s']:.2f}x target (200k/s)",
    )
    ingest.add_row(
        "metric rows / s",
        f"{r['ingest_metric_rows_per_s']:,.0f}",
        f"{r['speedup_vs_naive']:.1f}x naive json.loads+executemany ({r['baseline_naive_rows_per_s']:,.0f}/s)",
    )
    ingest.add_row(
        "all rows / CPU-second",
        f"{r['ingest_rows_per_cpu_s']:,.0f}",
        f"{r['ingest_rows_per_cpu_s'] / r['ingest_target_rows_per_s']:.2f}x target (load-independent)",
    )
    ingest.add_row("seconds (wall / CPU)", f"{r['ingest_seconds']:.2f} / {r['ingest_cpu_seconds']:.2f}", "")
    ingest.add_row("no-op ingest (nothing new), ms", f"{r['noop_ingest']['median_ms']:.1f}", "")
    console.print(ingest)
    queries = Table(title="Queries (read_query, fresh read-only connection each; median)", title_justify="left")
    for col in ("query", "rows", "median ms", "min ms", "vs 100 ms target"):
        queries.add_column(col, justify="right" if col != "query" else "left")
    entries = list(r["queries"].items()) + [
        ("run_summary + ingest check", {**r["run_summary_with_ingest_check"], "rows": r["runs"]})
    ]
    for name, q in entries:
        ratio = q["median_ms"] / r["query_target_ms"]
        verdict = "[green]ok[/green]" if ratio < 1 else "[red]over[/red]"
        queries.add_row(
            name, f"{q['rows']:,}", f"{q['median_ms']:.1f}", f"{q['min_ms']:.1f}", f"{ratio:.2f}x {verdict}"
        )
    console.print(queries)


if __name__ == "__main__":
    main()
