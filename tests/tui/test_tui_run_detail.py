"""Pilot tests of the run detail screen: every tab on fixture runs, live following, cancel."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from textual.widgets import DataTable, Input, RichLog, Select, TabbedContent

from stillhouse.kernel.runs import append_jsonl
from stillhouse.testing.sample_runs import standard_runs
from stillhouse.tui.screens.confirm import ConfirmScreen
from stillhouse.tui.screens.run_detail import RunDetailScreen
from stillhouse.tui.widgets.curves import TrainingCurves
from stillhouse.tui.widgets.samples import SamplesBrowser
from tests.tui.helpers import drive, highlight_row, screen_text, shows, wait_for

RUNS = {s.name: s for s in standard_runs()}


async def open_run(pilot, run_id: str) -> RunDetailScreen:
    await wait_for(pilot, lambda: pilot.app.screen.loaded, what="runs loaded")
    pilot.app.open_run(run_id)
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, RunDetailScreen) and pilot.app.screen.follower is not None)
    await shows(pilot, "Stages")
    return pilot.app.screen


def rows(app, selector: str) -> list[list[str]]:
    table = app.screen.query_one(selector, DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def test_overview_of_a_completed_run(fixture_home: Path, make_app) -> None:
    app = make_app(fixture_home)
    spec = RUNS["nli-4o"]

    async def scenario(pilot) -> None:
        await open_run(pilot, spec.run_id)
        text = screen_text(app)
        for stage in ("generate", "filter", "train", "evaluate", "report"):
            assert f"✓ {stage}" in text
        assert "completed" in text and "openai/gpt-4o" in text and "96%" in text
        assert "Resolved config" in text and 'task = "nli"' in text

    drive(app, scenario)


def test_tabs_by_number_keys(fixture_home: Path, make_app) -> None:
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        await open_run(pilot, RUNS["nli-mini"].run_id)
        tabs = app.screen.query_one(TabbedContent)
        for key, tab in zip("234561", ("training", "samples", "evaluation", "events", "artifacts", "overview"), strict=True):
            await pilot.press(key)
            assert tabs.active == tab

    drive(app, scenario)


def test_training_curves_show_the_loss(fixture_home: Path, make_app) -> None:
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        await open_run(pilot, RUNS["nli-mini"].run_id)
        await pilot.press("2")
        await shows(pilot, "Loss")
        text = screen_text(app)
        assert "Learning rate" in text and "Tokens / s" in text
        assert "loss " in text and "val loss" in text and "@20" in text  # latest values at step 20
        assert any(ch in text for ch in "⠁⠂⠄⡀⢀⠈⠐⠠")  # braille dots: a curve was drawn
        assert "●" in text  # 20 points: each one marked on the line

    drive(app, scenario)


def test_long_training_curves_are_lines_without_point_markers(fixture_home: Path, make_app) -> None:
    from stillhouse.testing.sample_runs import FakeRun, write_run

    run_id = "20261130-090000-nli-long-b003"
    write_run(fixture_home, FakeRun(run_id, name="nli-long", seed=3, train_steps=60, metric_every=1))
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        await open_run(pilot, run_id)
        await pilot.press("2")
        await wait_for(pilot, lambda: "@60" in screen_text(app), what="60 steps drawn")
        text = screen_text(app)
        loss_plot = text.split("Loss", 1)[1].split("Learning rate", 1)[0]
        # the 60-point train curve is a plain line; only the short validation curve shows its points
        assert 0 < loss_plot.count("●") <= 20

    drive(app, scenario)


def test_stage_summaries_are_not_cut_where_the_screen_has_room(fixture_home: Path, make_app) -> None:
    spec = RUNS["nli-mini"]
    summary = {"accepted": 16, "rejected": 4, "reasons": "wrong_label=3 unparseable=1", "teacher": "openai/gpt-4o-mini", "cached": 5}
    lines = (fixture_home / "runs" / spec.run_id / "events.jsonl").read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if '"stage_finished"' in line and '"filter"' in line)
    event = __import__("json").loads(lines[i])
    event["summary"] = summary
    lines[i] = __import__("json").dumps(event)
    (fixture_home / "runs" / spec.run_id / "events.jsonl").write_text("\n".join(lines) + "\n")
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        await open_run(pilot, spec.run_id)
        text = " ".join(screen_text(app).split())
        full = ", ".join(f"{k}={v}" for k, v in summary.items())
        assert len(full) > 60 and full in text and "…" not in text.split("✓ filter", 1)[1].split("✓ train", 1)[0]

    drive(app, scenario)


def test_the_train_stage_shows_the_balance_of_the_training_set(fixture_home: Path, make_app) -> None:
    import json

    spec = RUNS["nli-mini"]
    path = fixture_home / "runs" / spec.run_id / "events.jsonl"
    lines = path.read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if '"stage_finished"' in line and '"train"' in line)
    event = json.loads(lines[i])
    balance = {
        "mode": "weights",
        "by": "label",
        "training": {"contradiction": 4, "entailment": 11, "neutral": 8},
        "weights": {"contradiction": 1.9167, "entailment": 0.697, "neutral": 0.9583},
    }
    event["summary"] = {**event["summary"], "balance": balance}
    lines[i] = json.dumps(event)
    path.write_text("\n".join(lines) + "\n")
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        await open_run(pilot, spec.run_id)
        text = " ".join(screen_text(app).split())
        train_line = text.split("✓ train", 1)[1].split("✓ evaluate", 1)[0]
        assert "balance weights by label: contradiction=4 entailment=11 neutral=8" in train_line
        assert "weights contradiction=1.9167 entailment=0.697 neutral=0.9583" in train_line

    drive(app, scenario)


def test_samples_filter_by_verdict_reason_and_search(fixture_home: Path, make_app) -> None:
    app = make_app(fixture_home)
    spec = RUNS["qa"]
    samples = [__import__("json").loads(line) for line in (fixture_home / "runs" / spec.run_id / "samples.jsonl").read_text().splitlines()]
    rejected = [s for s in samples if not s["accepted"]]
    reason = rejected[0]["reason"]

    async def scenario(pilot) -> None:
        screen = await open_run(pilot, spec.run_id)
        await pilot.press("3")
        browser = screen.query_one(SamplesBrowser)
        await wait_for(pilot, lambda: browser.samples, what="samples loaded")
        # 20 filter verdicts and 5 held-out evaluation samples
        assert len(browser.view) == 25
        select = screen.query_one("#samples-verdict", Select)
        select.value = "rejected"
        await wait_for(pilot, lambda: len(browser.view) == len(rejected))
        assert all(r[1].startswith("✗") for r in rows(app, "#samples-table"))
        select.value = f"reason:{reason}"
        await wait_for(pilot, lambda: len(browser.view) == sum(s["reason"] == reason for s in rejected))
        select.value = "all"
        search = screen.query_one("#samples-search", Input)
        search.focus()
        await pilot.press(*"question 7")
        await wait_for(pilot, lambda: [s.sample_id for s in browser.view] == ["s0007"])
        text = screen_text(app)
        assert "Teacher answer" in text and "Reasoning about 7" in text and "Prompt" in text

    drive(app, scenario)


def test_samples_show_each_evaluated_models_answer(fixture_home: Path, make_app) -> None:
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        screen = await open_run(pilot, RUNS["nli-mini"].run_id)
        await pilot.press("3")
        browser = screen.query_one(SamplesBrowser)
        await wait_for(pilot, lambda: browser.samples)
        screen.query_one("#samples-verdict", Select).value = "eval"
        await wait_for(pilot, lambda: len(browser.view) == 5)
        text = screen_text(app)
        assert "teacher answer" in text and "baseline answer" in text and "distilled answer" in text
        # every evaluated row has a baseline and a distilled answer; the columns share the width
        table = screen.query_one("#samples-table", DataTable)
        labels = [str(c.label) for c in table.columns.values()]
        assert labels == ["Sample", "Verdict", "Reference", "Teacher", "Baseline", "Distilled"]
        assert all(r[4] and r[5] and r[5] != "not evaluated" for r in rows(app, "#samples-table"))
        widths = [c.width for c in table.columns.values()]
        assert sum(widths) + 2 * len(widths) >= 110  # 120 columns: no half-empty screen
        screen.query_one("#samples-verdict", Select).value = "accepted"  # training rows: not evaluated
        await wait_for(pilot, lambda: browser.view and browser.view[0].accepted)
        assert {r[5] for r in rows(app, "#samples-table")} == {"not evaluated"}

    drive(app, scenario)


def test_evaluation_comparison_and_missing_reasons(fixture_home: Path, make_app) -> None:
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        await open_run(pilot, RUNS["math"].run_id)
        await pilot.press("4")
        await wait_for(pilot, lambda: app.screen.query_one("#comparison-table", DataTable).row_count == 5)
        labels = [r[0] for r in rows(app, "#comparison-table")]
        assert labels == ["teacher", "baseline", "distilled", "vs teacher", "vs baseline"]
        metrics = {r[0]: r[1:] for r in rows(app, "#metrics-table")}
        assert metrics["accuracy"] == ["0.760", "0.050", "0.730"]
        text = screen_text(app)
        assert "API model: parameter count unknown" in text  # why the teacher's size is missing
        assert "96.1%" in text  # accuracy retained: 0.73 / 0.76

    drive(app, scenario)


def test_evaluation_shows_the_exported_student_as_its_own_row(fixture_home: Path, make_app) -> None:
    """evaluate.export = ["gguf:q8_0"] stores the export under role student-gguf-q8_0: the
    Evaluation tab shows it beside the distilled student, with its change against it."""
    from stillhouse.kernel.run_folder import RunFolder

    folder = RunFolder(fixture_home / "runs" / RUNS["math"].run_id)
    results = folder.read_results()
    results["student"]["metrics"].append({"name": "bytes_on_disk", "value": 400e6, "n": 1, "higher_is_better": False, "unit": "bytes"})
    results["student-gguf-q8_0"] = {
        "model": "exports/gguf-q8_0/model.gguf",
        "info": {},
        "metrics": [
            {"name": "accuracy", "value": 0.71, "n": 100},
            {"name": "bytes_on_disk", "value": 100e6, "n": 1, "higher_is_better": False, "unit": "bytes"},
        ],
    }
    folder.write_results(results)
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        await open_run(pilot, RUNS["math"].run_id)
        await pilot.press("4")
        await wait_for(pilot, lambda: app.screen.query_one("#comparison-table", DataTable).row_count == 7)
        table = {r[0]: r[1:] for r in rows(app, "#comparison-table")}
        assert list(table) == ["teacher", "baseline", "distilled", "distilled, q8_0 GGUF", "vs teacher", "vs baseline", "q8_0 GGUF vs distilled"]
        assert any("better" in cell for cell in table["q8_0 GGUF vs distilled"])  # 4x smaller on disk
        assert any("worse" in cell for cell in table["q8_0 GGUF vs distilled"])  # 0.71 < 0.73 accuracy
        metrics = {r[0]: r[1:] for r in rows(app, "#metrics-table")}
        assert metrics["accuracy"][-1] == "0.710"

    drive(app, scenario)


def test_events_log_and_artifacts(fixture_home: Path, make_app) -> None:
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        screen = await open_run(pilot, RUNS["sum"].run_id)
        await pilot.press("5")
        log = screen.query_one(RichLog)
        await wait_for(pilot, lambda: log.lines)
        text = screen_text(app)
        # Following: the newest events are in view; progress is one replaceable line, not 100 rows.
        assert "run_finished" in text and "stage_finished" in text
        assert "progress: generate 20/20" in text and "train 20/20" in text and "metric events folded" in text
        await pilot.press("6")
        await wait_for(pilot, lambda: app.screen.query_one("#artifacts-table", DataTable).row_count > 0)
        paths = [r[0] for r in rows(app, "#artifacts-table")]
        assert paths[:2] == ["student", "report.md"]  # declared artifacts first
        assert {"events.jsonl", "samples.jsonl", "eval/results.json"} <= set(paths)
        await highlight_row(pilot, "#artifacts-table", paths.index("eval/results.json"))
        await shows(pilot, '"metrics": [')

    drive(app, scenario)


def test_live_run_follows_new_events(fixture_home: Path, make_app) -> None:
    app = make_app(fixture_home)
    spec = RUNS["qa-live"]
    events_path = fixture_home / "runs" / spec.run_id / "events.jsonl"

    async def scenario(pilot) -> None:
        screen = await open_run(pilot, spec.run_id)
        assert "▶ train" in screen_text(app)
        curves = screen.query_one(TrainingCurves)
        step = 10
        append_jsonl(events_path, [
            {"ts": 2e9, "type": "metric", "run_id": spec.run_id, "key": "train/loss", "value": 0.123, "step": 11, "context": "train"},
            {"ts": 2e9, "type": "progress", "run_id": spec.run_id, "stage": "train", "done": step + 5, "total": 20},
        ])
        await shows(pilot, "15/20")
        await pilot.press("2")
        await wait_for(pilot, lambda: "loss 0.123 @11" in screen_text(app), what="new loss point")
        assert curves.is_mounted
        append_jsonl(events_path, [
            {"ts": 2e9 + 1, "type": "stage_finished", "run_id": spec.run_id, "stage": "train", "summary": {"steps": 20}, "seconds": 3.0},
            {"ts": 2e9 + 2, "type": "run_finished", "run_id": spec.run_id, "status": "failed", "error": "evaluate: disk full"},
        ])
        await pilot.press("1")
        await shows(pilot, "evaluate: disk full")
        await pilot.press("5")
        await shows(pilot, "run_finished")

    drive(app, scenario)


CHILD = textwrap.dedent(
    """
    import json, os, signal, sys, time
    path = sys.argv[1]
    def emit(**event):
        with open(path, "a") as fh:
            fh.write(json.dumps({"ts": time.time(), "run_id": "cancel-me", **event}) + "\\n")
    def stop(*_):
        emit(type="stage_failed", stage="train", error="interrupted")
        emit(type="run_finished", status="interrupted", error="stopped by the user")
        sys.exit(0)
    signal.signal(signal.SIGINT, stop)
    emit(type="run_started", name="cancel-me", task="nli", pid=os.getpid(), primary_metric="accuracy")
    emit(type="stage_started", stage="train")
    while True:
        time.sleep(0.05)
    """
)


def test_cancel_sends_sigint_to_the_runs_process(stillhouse_home: Path, make_app) -> None:
    run_dir = stillhouse_home / "runs" / "20261130-000000-cancel-me-c001"
    run_dir.mkdir(parents=True)
    events = run_dir / "events.jsonl"
    # A stand-in pipeline process: it records its pid and turns SIGINT into an interrupted run.
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(events)])
    try:
        deadline = time.monotonic() + 20
        while "stage_started" not in (events.read_text() if events.exists() else ""):
            assert time.monotonic() < deadline and child.poll() is None
            time.sleep(0.05)
        app = make_app(stillhouse_home, use_registry=False)

        async def scenario(pilot) -> None:
            await open_run(pilot, run_dir.name)
            await pilot.press("x")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await wait_for(pilot, lambda: child.poll() is not None, what="child stopped by SIGINT")
            await shows(pilot, "interrupted")

        drive(app, scenario)
        assert child.wait(10) == 0
        assert '"status": "interrupted"' in events.read_text()
    finally:
        if child.poll() is None:
            child.kill()


def test_samples_at_80_columns_keep_distilled_and_show_the_reject_detail(fixture_home: Path, make_app) -> None:
    """At 80 columns the Distilled column stays on screen (Reference gives way: the detail pane
    under the table shows it), and a rejected sample says what was measured against what limit."""
    import json

    spec = RUNS["nli-mini"]
    path = fixture_home / "runs" / spec.run_id / "samples.jsonl"
    samples = [json.loads(line) for line in path.read_text().splitlines()]
    first_rejected = next(s for s in samples if not s["accepted"])
    first_rejected["detail"] = "teacher said neutral, reference is entailment"
    path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        screen = await open_run(pilot, spec.run_id)
        await pilot.press("3")
        browser = screen.query_one(SamplesBrowser)
        await wait_for(pilot, lambda: browser.samples)
        screen.query_one("#samples-verdict", Select).value = "eval"
        await wait_for(pilot, lambda: len(browser.view) == 5)
        table = screen.query_one("#samples-table", DataTable)
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[-1] == "Distilled" and "Teacher" in labels and "Reference" not in labels
        assert sum(c.width + 2 for c in table.columns.values()) <= 80 - 2  # all of it on screen
        assert all(r[-1] and r[-1] != "not evaluated" for r in rows(app, "#samples-table"))
        screen.query_one("#samples-verdict", Select).value = f"reason:{first_rejected['reason']}"
        await wait_for(pilot, lambda: browser.view and browser.view[0].sample_id == first_rejected["sample_id"])
        from stillhouse.tui.widgets.samples import detail

        text = " ".join(part.plain for part in detail(browser.view[0]).renderables)  # the pane under the table
        assert f"rejected: {first_rejected['reason']} (teacher said neutral, reference is entailment)" in text

    drive(app, scenario, size=(80, 24))
