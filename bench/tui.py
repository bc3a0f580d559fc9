"""TUI benchmark: the Runs screen with 10,000 runs in the registry.

    python bench/tui.py            # 10,000 runs (about 2-3 minutes here, most of it building the registry)
    python bench/tui.py --quick    # 1,000 runs
    python bench/tui.py --keep /tmp/tui-home   # build once, reuse on the next call

Builds a home with N run folders in the documented format (small runs: templates made by
testing/sample_runs.py, re-stamped per run) and ingests them into a real DuckDB registry. Then,
through Textual's Pilot on the real app in a headless 120x40 terminal:

- time to first rows: app start until the first frame drawn with rows in the Runs table
  (target: 1 s), and until every run is loaded;
- the same from the run folders alone (no registry) and with every row added to the table at
  once (no paging): the baselines the ratios are against;
- scrolling: key-to-idle latency of down / pagedown / end on the 10,000-run table, against the
  same keys on the unpaged table and on a plain 200-row DataTable of short strings in the same
  process (Textual's own floor here).

Prints a table and writes JSON (bench/results/tui.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from stillhouse.kernel.runs import append_jsonl
from stillhouse.registry.ingest import ingest_all
from stillhouse.testing.sample_runs import FakeRun, fabricate

TASKS = ("nli", "qa", "math", "summarization", "conversation")
TEACHERS = ("openai/gpt-4o-mini", "openai/gpt-4o", "anthropic/claude-sonnet-4-5")
FIRST_ROWS_TARGET_S = 1.0
EPOCH = 1_790_000_000.0


def status_of(i: int) -> str:
    """1 % running, 1 % interrupted, 2 % failed, the rest completed."""
    return {0: "running", 1: "interrupted", 2: "failed", 3: "failed"}.get(i % 100, "completed")


def build_home(home: Path, runs: int) -> dict[str, float]:
    """N run folders from a few fabricated templates (re-stamped ids and times), then ingest."""
    start = time.perf_counter()
    templates: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for task in TASKS:
        for teacher in TEACHERS:
            for status in ("completed", "failed", "running", "interrupted"):
                spec = FakeRun(
                    "template", task=task, teacher_model=teacher, samples=3, train_steps=3,
                    status="running" if status == "interrupted" else status, started=0.0,
                )
                events = fabricate(spec).events
                if status == "interrupted":
                    events.append({"ts": events[-1]["ts"] + 1, "type": "run_finished", "run_id": "template",
                                   "status": "interrupted", "error": "stopped by the user"})
                templates[(task, teacher, status)] = events
    root = home / "runs"
    for i in range(runs):
        run_id = f"20261101-{i // 3600 % 24:02d}{i // 60 % 60:02d}{i % 60:02d}-bench-{i:05d}"
        events = templates[(TASKS[i % len(TASKS)], TEACHERS[i % len(TEACHERS)], status_of(i))]
        offset = EPOCH + i * 60.0
        stamped = []
        for event in events:
            event = {**event, "run_id": run_id, "ts": event["ts"] + offset}
            if event["type"] == "run_started":
                event["name"] = f"bench-{i:05d}"
            elif event["type"] == "eval" and event["role"] == "student":
                event["value"] = 0.5 + (i % 40) / 100
            stamped.append(event)
        run_dir = root / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        append_jsonl(run_dir / "events.jsonl", stamped, fsync=False)
    fabricate_s = time.perf_counter() - start
    start = time.perf_counter()
    ingest_all(home)
    return {"fabricate_s": fabricate_s, "ingest_s": time.perf_counter() - start}


async def session(
    home: Path, runs: int, *, use_registry: bool = True, naive: bool = False, keys: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """One app session: seconds from app start to the first frame drawn with rows in the Runs table
    and to every run loaded; then, with ``keys``, key-to-idle latencies on the loaded table.

    ``naive``: the design without paging, as the baseline: no quick first screenful from the
    newest folders, one full read, every row added to the table at once."""
    from textual.widgets import DataTable

    from stillhouse.tui.app import StillhouseApp
    from stillhouse.tui.catalog import RunCatalog
    from stillhouse.tui.screens import runs as runs_screen

    saved_page, saved_newest = runs_screen.PAGE, RunCatalog.newest
    if naive:
        runs_screen.PAGE = runs
        RunCatalog.newest = lambda self, limit: []  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        app = StillhouseApp(home, use_registry=use_registry, poll_interval=1.0)
        seen: dict[str, float] = {}
        display = app._display

        def timed_display(screen: Any, renderable: Any) -> None:
            # The first frame written to the terminal after the table has rows: what a user sees.
            display(screen, renderable)
            if "first_frame_s" not in seen and renderable is not None and screen.query("#runs-table"):
                if screen.query_one("#runs-table").row_count:
                    seen["first_frame_s"] = time.perf_counter() - start

        app._display = timed_display  # type: ignore[method-assign]
        async with app.run_test(size=(120, 40)) as pilot:
            while "first_frame_s" not in seen or not getattr(app.screen, "loaded", False):
                await pilot.pause(0.01)
            result: dict[str, Any] = {"first_frame_s": seen["first_frame_s"], "all_runs_loaded_s": time.perf_counter() - start}
            screen = app.screen
            assert isinstance(screen, runs_screen.RunsScreen)
            assert len(screen.all_rows) == runs, f"{len(screen.all_rows)} runs loaded, expected {runs}"
            await pilot.pause()
            for name, presses in (keys or {}).items():
                result[name] = await key_latencies(pilot, presses)
            table = screen.query_one("#runs-table", DataTable)
            result.update(rows_in_table=table.row_count, cursor_row=table.cursor_row)
            return result
    finally:
        runs_screen.PAGE, RunCatalog.newest = saved_page, saved_newest  # type: ignore[method-assign]


async def key_latencies(pilot: Any, keys: list[str]) -> dict[str, float]:
    """Key-to-idle latency: Pilot returns from press once the app has handled the key."""
    times = []
    for key in keys:
        start = time.perf_counter()
        await pilot.press(key)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times), "p95_ms": times[max(0, int(len(times) * 0.95) - 1)], "max_ms": times[-1], "n": len(times)}


def scroll_keys(downs: int, pages: int) -> dict[str, list[str]]:
    return {"down": ["down"] * downs, "pagedown": ["pagedown"] * pages, "end": ["end"] * 5}


async def plain_table(keys: dict[str, list[str]]) -> dict[str, Any]:
    """The same keys on a plain 200-row DataTable of short strings: Textual's own floor here."""
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    class Plain(App[None]):
        def compose(self) -> ComposeResult:
            table: DataTable[str] = DataTable(cursor_type="row")
            for c in range(12):
                table.add_column(f"c{c}", width=10, key=f"c{c}")
            for r in range(200):
                table.add_row(*(f"r{r}c{c}" for c in range(12)), key=str(r))
            yield table

    app = Plain()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        return {name: await key_latencies(pilot, presses) for name, presses in keys.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="1,000 runs, fewer key presses")
    parser.add_argument("--keep", type=Path, help="build the home here and reuse it when it exists")
    parser.add_argument("--out", type=Path, default=Path("bench/results/tui.json"))
    args = parser.parse_args()
    if args.quick:
        args.runs = 1_000
    downs, pages = (40, 10) if args.quick else (100, 30)

    home = args.keep or Path(tempfile.mkdtemp(prefix="stillhouse-bench-tui-"))
    try:
        built: dict[str, float | bool] = {"reused": True}
        if not (home / "registry.duckdb").exists() or len(list((home / "runs").iterdir())) != args.runs:
            shutil.rmtree(home / "runs", ignore_errors=True)
            (home / "registry.duckdb").unlink(missing_ok=True)
            built = build_home(home, args.runs)
            print(f"built {args.runs} runs: fabricate {built['fabricate_s']:.1f} s, ingest {built['ingest_s']:.1f} s", file=sys.stderr)

        keys = scroll_keys(downs, pages)
        registry = asyncio.run(session(home, args.runs, keys=keys))
        folders = asyncio.run(session(home, args.runs, use_registry=False))
        unpaged = asyncio.run(session(home, args.runs, naive=True, keys=keys))
        floor = asyncio.run(plain_table(keys))
    finally:
        if args.keep is None:
            shutil.rmtree(home, ignore_errors=True)

    ratios = {
        "first_rows_target_over_actual": FIRST_ROWS_TARGET_S / registry["first_frame_s"],
        "folders_over_registry": folders["first_frame_s"] / registry["first_frame_s"],
        "unpaged_over_paged": unpaged["first_frame_s"] / registry["first_frame_s"],
        **{f"{k}_p50_paged_over_unpaged": registry[k]["p50_ms"] / unpaged[k]["p50_ms"] for k in keys},
        **{f"{k}_p50_paged_over_plain_table": registry[k]["p50_ms"] / floor[k]["p50_ms"] for k in keys},
    }
    result = {
        "benchmark": "tui",
        "runs": args.runs,
        "machine": {"python": platform.python_version(), "cpu_count": __import__("os").cpu_count()},
        "build": built,
        "registry_paged": registry,
        "folders_only": folders,
        "registry_unpaged": unpaged,
        "plain_table_ms": floor,
        "ratios": ratios,
        "targets": {"first_rows_s": FIRST_ROWS_TARGET_S},
    }
    print(f"\nRuns screen with {args.runs:,} runs (120x40, headless Pilot)")
    print("  first frame with rows (all runs loaded)")
    print(f"    registry, newest page first  {registry['first_frame_s']:7.3f} s  ({registry['all_runs_loaded_s']:.3f} s)   target {FIRST_ROWS_TARGET_S:.1f} s: {ratios['first_rows_target_over_actual']:.2f}x")
    print(f"    run folders only             {folders['first_frame_s']:7.3f} s  ({folders['all_runs_loaded_s']:.3f} s)   {ratios['folders_over_registry']:.1f}x the registry path")
    print(f"    one read, all rows at once   {unpaged['first_frame_s']:7.3f} s  ({unpaged['all_runs_loaded_s']:.3f} s)   {ratios['unpaged_over_paged']:.1f}x the paged table")
    print("  key-to-idle latency, p50 / p95 ms   paged table       all rows at once  plain 200-row table")
    for key in keys:
        cols = [registry[key], unpaged[key], floor[key]]
        line = "   ".join(f"{c['p50_ms']:6.1f} / {c['p95_ms']:6.1f}" for c in cols)
        print(f"    {key:<10} x{registry[key]['n']:<4}          {line}")
    print(f"  paged table: {registry['rows_in_table']:,} of {args.runs:,} rows added after scrolling to row {registry['cursor_row']:,}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
