"""Pilot tests of the Runs screen: registry rows, filter, sort, open, live updates, marks."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Input

from stillhouse.kernel.runs import STAGES, append_jsonl
from stillhouse.testing.sample_runs import FakeRun, standard_runs, write_run
from stillhouse.tui.screens.compare import CompareScreen
from stillhouse.tui.screens.run_detail import RunDetailScreen
from stillhouse.tui.screens.runs import RunsScreen
from tests.tui.helpers import drive, screen_text, shows, wait_for

LIVE = next(s for s in standard_runs() if s.status == "running")


def table(app) -> DataTable:
    return app.screen.query_one("#runs-table", DataTable)


def shown_ids(app) -> list[str]:
    t = table(app)
    return [str(t.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(t.row_count)]


async def loaded(pilot) -> None:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, RunsScreen) and pilot.app.screen.loaded, what="runs loaded")


def test_lists_every_run_from_the_registry_newest_first(fixture_home: Path, make_app) -> None:
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        await loaded(pilot)
        specs = sorted(standard_runs(), key=lambda s: s.started, reverse=True)
        assert shown_ids(app) == [s.run_id for s in specs]
        text = screen_text(app)
        assert "10 of 10 runs" in text and "1 live" in text and "source: registry" in text
        # nli-4o: teacher 0.93, student 0.89 -> 96 % retained
        row = table(app).get_row(next(s.run_id for s in specs if s.name == "nli-4o"))
        assert str(row[4]) == "0.890" and str(row[5]) == "96%" and str(row[7]) == "0.930"  # distilled, retained, teacher

    drive(app, scenario)


def test_filter_narrows_and_escape_clears(fixture_home: Path, make_app) -> None:
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        await loaded(pilot)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"task:nli")
        await wait_for(pilot, lambda: len(shown_ids(app)) == 5, what="5 nli runs")
        await pilot.press("space", *"fail")
        await wait_for(pilot, lambda: shown_ids(app) == ["20261127-090000-nli-fail-a008"])
        await pilot.press("enter")  # back to the table, filter kept
        assert app.focused is table(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(shown_ids(app)) == 10, what="filter cleared")

    drive(app, scenario)


def test_sort_by_key_and_by_header_click(fixture_home: Path, make_app) -> None:
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        await loaded(pilot)
        screen = app.screen
        while screen.sort_column != "retention":
            await pilot.press("s")
        ids = shown_ids(app)
        rows = {s.run_id: s for s in standard_runs()}
        retained = [rows[i].scores["student"] / rows[i].scores["teacher"] for i in ids if "teacher" in rows[i].scores and rows[i].status == "completed"]
        assert retained == sorted(retained, reverse=True) and len(retained) == 7
        assert "Ret. ▼" in screen_text(app)
        await pilot.press("S")
        assert "Ret. ▲" in screen_text(app)
        await pilot.click("#runs-table", offset=(2, 0))  # the Name header
        await wait_for(pilot, lambda: screen.sort_column == "name")
        names = [rows[i].name for i in shown_ids(app)]
        assert names == sorted(names)

    drive(app, scenario)


def test_enter_opens_the_run_and_escape_returns(fixture_home: Path, make_app) -> None:
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        await loaded(pilot)
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        assert app.screen.run_id == shown_ids_at(app, 1)
        await shows(pilot, "Stages")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert table(app).cursor_row == 1

    def shown_ids_at(app, index: int) -> str:
        return sorted(standard_runs(), key=lambda s: s.started, reverse=True)[index].run_id

    drive(app, scenario)


def test_live_run_and_new_run_folder_update_the_table(fixture_home: Path, make_app) -> None:
    app = make_app(fixture_home)
    live_dir = fixture_home / "runs" / LIVE.run_id

    async def scenario(pilot) -> None:
        await loaded(pilot)
        assert str(table(app).get_row(LIVE.run_id)[1]) == "running"
        events = [{"ts": 2e9, "type": "stage_finished", "run_id": LIVE.run_id, "stage": "train", "summary": {}, "seconds": 1.0}]
        events += [{"ts": 2e9 + 1, "type": "run_finished", "run_id": LIVE.run_id, "status": "interrupted", "error": "stopped"}]
        append_jsonl(live_dir / "events.jsonl", events)
        await wait_for(pilot, lambda: str(table(app).get_row(LIVE.run_id)[1]) == "interrupted", what="live row updated")
        # A run launched elsewhere appears without a reload.
        write_run(fixture_home, FakeRun("20261130-120000-brand-new-b001", name="brand-new", started=2e9))
        await wait_for(pilot, lambda: shown_ids(app)[:1] == ["20261130-120000-brand-new-b001"], what="new run listed")
        assert "11 of 11 runs" in screen_text(app) and "registry + 1 new folder" in screen_text(app)

    drive(app, scenario)


def test_marked_runs_open_in_compare(fixture_home: Path, make_app) -> None:
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        await loaded(pilot)
        first, second = shown_ids(app)[3:5]
        await pilot.press("down", "down", "down", "space", "space")
        assert app.screen.marked == {first, second}
        await shows(pilot, "2 marked")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and len(app.screen.states) == 2, what="compared")
        assert [s.run_id for s in app.screen.states] == [first, second]

    drive(app, scenario)


def test_without_registry_the_folders_are_listed(fixture_home: Path, make_app) -> None:
    app = make_app(fixture_home, use_registry=False)

    async def scenario(pilot) -> None:
        await loaded(pilot)
        assert len(shown_ids(app)) == 10
        assert "source: run folders" in screen_text(app)

    drive(app, scenario)


def test_name_and_task_use_free_width_and_80_columns_keep_the_scores(stillhouse_home: Path, make_app) -> None:
    long_name = "summarization-with-a-rather-long-name"
    write_run(stillhouse_home, FakeRun("20261130-090000-sum-long-b001", task="summarization", name=long_name, seed=9))
    wide, narrow = make_app(stillhouse_home), make_app(stillhouse_home)

    async def at_160(pilot) -> None:
        await loaded(pilot)
        text = screen_text(wide)
        assert long_name in text and "summarization " in text  # neither cut: 160 columns leave room
        assert "20261130-090000-sum-long-b001" in text  # the whole run id where there is room

    async def at_80(pilot) -> None:
        await loaded(pilot)
        text = screen_text(narrow)
        assert "Distilled" in text and "Ret." in text  # the scores stay on screen
        assert "summarization…" in text  # cut to fit, not hidden
        # the run id's shortest unique tail, whole on screen (not "2026"): `still runs show b001` takes it
        assert " b001 " in text and "20261130-090000-sum-long-b001" not in text
        assert all(len(line.rstrip()) <= 80 for line in text.splitlines())

    drive(wide, at_160, size=(160, 30))
    drive(narrow, at_80, size=(80, 24))


def test_a_generate_only_run_shows_the_stages_it_ran_not_100_percent(stillhouse_home: Path, make_app) -> None:
    from stillhouse.tui.catalog import RunRow
    from stillhouse.tui.screens.runs import progress_cell

    assert str(progress_cell(RunRow("a", status="completed", progress=1.0, stages_done=("generate",)))) == "generate"
    assert str(progress_cell(RunRow("a", status="completed", progress=1.0, stages_done=("generate", "filter")))) == "2/5 stages"
    assert "100%" in str(progress_cell(RunRow("a", status="completed", progress=1.0, stages_done=tuple(STAGES))))
    run_id = "20261130-090000-gen-only-b002"
    run_dir = write_run(stillhouse_home, FakeRun(run_id, name="gen-only", seed=9))
    # Keep run_started and the generate stage only, as `still run --stage generate` writes them.
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    cut = next(i for i, line in enumerate(lines) if '"stage_started"' in line and '"filter"' in line)
    end = next(line for line in lines if '"run_finished"' in line)
    (run_dir / "events.jsonl").write_text("\n".join([*lines[:cut], end]) + "\n")
    for ingest in (False, True):  # from the run folder, then from the registry
        if ingest:
            from stillhouse.registry.ingest import ingest_all

            ingest_all(stillhouse_home)
        app = make_app(stillhouse_home)

        async def scenario(pilot) -> None:
            await loaded(pilot)
            row = table(pilot.app).get_row(run_id)
            assert str(row[1]) == "completed" and str(row[2]) == "generate"

        drive(app, scenario)


def test_marks_and_compare_selection_are_one_and_unselected_runs_show_no_x(fixture_home: Path, make_app) -> None:
    from textual.widgets import SelectionList

    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        await loaded(pilot)
        first, second, third = shown_ids(app)[3:6]
        await pilot.press("down", "down", "down", "space", "space", "space")  # marks 3 runs
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and len(app.screen.states) == 3, what="compared")
        compare = app.screen
        picker = compare.query_one(SelectionList)
        lines = screen_text(app).splitlines()
        boxed = [line for line in lines if "▐" in line or "▌" in line]
        assert sum("X" in line.split("▌", 1)[0] for line in boxed) == 3  # only the three selected runs
        # Unselect one in Compare: the Runs screen loses its mark
        values = [picker.get_option_at_index(i).value for i in range(picker.option_count)]
        picker.deselect(values[values.index(second)])
        await wait_for(pilot, lambda: len(compare.states) == 2, what="two compared")
        await pilot.press("1")
        await wait_for(pilot, lambda: app.screen.marked == {first, third}, what="marks follow Compare")
        await shows(pilot, "2 marked")
        name_cell = table(app).get_row(second)[0]
        assert "●" not in str(name_cell) and "●" in str(table(app).get_row(first)[0])
        # Unmark on the Runs screen: Compare no longer selects it
        await pilot.press("3")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        assert set(app.screen.query_one(SelectionList).selected) == {first, third}
        await pilot.press("1")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        t = table(app)
        t.move_cursor(row=shown_ids(app).index(first))
        await pilot.press("space")
        await pilot.press("3")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.states == [], what="nothing to compare")
        assert app.screen.query_one(SelectionList).selected == [third]
        assert "select two or more runs" in screen_text(app)

    drive(app, scenario)


def test_short_ids_are_the_shortest_unique_tails() -> None:
    from stillhouse.tui.catalog import short_ids

    ids = ["20261130-090000-nli-a1b2", "20261130-090500-nli-ffa1", "20261130-091000-qa-b2-0a1b2"]
    short = short_ids(ids)
    # "a1b2" is also inside the third id: the first needs one more character ("-" never leads)
    assert short == {ids[0]: "i-a1b2", ids[1]: "ffa1", ids[2]: "0a1b2"}
    for run_id, tail in short.items():
        assert run_id.endswith(tail) and sum(tail in other for other in ids) == 1
