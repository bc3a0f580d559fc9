"""The Sweeps screen, driven with Pilot over real sweep folders: Optuna journals written by the
sweep plugin's own storage code (SweepFolder, open_study) with trials told by hand, each trial's run
a fabricated run folder tagged as plugins/sweep/trial.py tags them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input

from stillhouse.kernel.runs import process_start_time
from stillhouse.plugins.sweep.study import SweepFolder, open_study, worker_attrs
from stillhouse.testing.sample_runs import FakeRun, started_from_id, write_run
from stillhouse.tui.screens.compare import CompareScreen
from stillhouse.tui.screens.run_detail import RunDetailScreen
from stillhouse.tui.screens.sweeps import SweepFilePrompt, SweepsScreen
from tests.tui.helpers import drive, notified, screen_text, shows, wait_for

SWEEP_TEXT = """[sweep]
config = "run.toml"
name = "{name}"
n_trials = {n_trials}
pruner = "none"

[sweep.space]
"train.learning_rate" = {{ type = "float", low = 1e-4, high = 1e-2, log = true }}
"train.lr_scheduler" = {{ type = "categorical", choices = ["linear", "constant"] }}
"""


class SweepWriter:
    """A sweep folder under the home and its study; ``tell`` adds a complete trial with a run."""

    def __init__(self, home: Path, tmp: Path, name: str, n_trials: int, day: int) -> None:
        source = tmp / f"{name}.toml"
        text = SWEEP_TEXT.format(name=name, n_trials=n_trials)
        source.write_text(text)
        self.home, self.name, self.day = home, name, day
        self.folder = SweepFolder.create(name, source, text, home)
        self.study = open_study(self.folder, ["maximize"], sampler="random", seed=day)
        self.run_ids: dict[int, str] = {}

    def _ask(self) -> Any:
        trial = self.study.ask()
        trial.suggest_float("train.learning_rate", 1e-4, 1e-2, log=True)
        trial.suggest_categorical("train.lr_scheduler", ["linear", "constant"])
        return trial

    def tell(self, value: float) -> int:
        trial = self._ask()
        run_id = f"202612{self.day:02d}-0900{trial.number:02d}-{self.name}-t{trial.number}-{self.day:02d}{trial.number:02d}"
        spec = FakeRun(
            run_id,
            name=f"{self.name}-t{trial.number}",
            seed=trial.number,
            config={"tags": {"sweep": self.folder.id, "trial": str(trial.number)}},
            scores={"teacher": 0.9, "baseline": 0.4, "student": value},
        )
        spec.started = started_from_id(run_id)
        write_run(self.home, spec)
        trial.set_user_attr("run_id", run_id)
        self.study.tell(trial, [value])
        self.run_ids[trial.number] = run_id
        return trial.number

    def running(self, worker: dict[str, Any]) -> int:
        trial = self._ask()
        trial.set_user_attr("worker", worker)
        return trial.number


@pytest.fixture
def sweeps_home(stillhouse_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(stillhouse_home.parent)
    return stillhouse_home


def trial_numbers(app: Any) -> list[str]:
    table = app.screen.query_one("#trials-table", DataTable)
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


async def sweeps_screen(pilot: Any) -> SweepsScreen:
    await pilot.press("6")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SweepsScreen) and pilot.app.screen.loaded)
    return pilot.app.screen


def test_sweeps_list_trials_sorted_by_objective_open_and_compare(sweeps_home: Path, tmp_path: Path, make_app) -> None:
    old = SweepWriter(sweeps_home, tmp_path, "old", 2, 1)
    old.tell(0.5)
    old.tell(0.6)
    time.sleep(1.1)  # sweep ids start with the second: the newer sweep lists first
    sweep = SweepWriter(sweeps_home, tmp_path, "lr", 5, 2)
    for value in (0.61, 0.83, 0.42, 0.77):
        sweep.tell(value)
    app = make_app(sweeps_home)

    async def scenario(pilot) -> None:
        screen = await sweeps_screen(pilot)
        table = screen.query_one("#sweeps-table", DataTable)
        assert [str(k.value) for k in table.rows] == [sweep.folder.id, old.folder.id]
        await wait_for(pilot, lambda: len(screen.trials) == 4)
        text = screen_text(app)
        assert "4/5" in text and "2/2" in text and "finished" in text and "stopped" in text, text
        assert "best primary metric (maximize) 0.83 at trial 1" in text
        # best objective first, then worst first after a second o
        assert trial_numbers(app) == ["1", "3", "0", "2"]
        await pilot.press("o")
        assert trial_numbers(app) == ["2", "0", "3", "1"]
        await pilot.press("o")
        # enter on the best trial opens its run
        screen.query_one("#trials-table", DataTable).focus()
        screen.query_one("#trials-table", DataTable).move_cursor(row=0)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        assert app.screen.run_id == sweep.run_ids[1]
        await app.run_action("switch_mode('sweeps')")  # (6 is the run detail's sixth tab)
        await wait_for(pilot, lambda: isinstance(app.screen, SweepsScreen))
        # c compares the three best trials' runs, best first
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        assert app.screen.selected == [sweep.run_ids[1], sweep.run_ids[3], sweep.run_ids[0]]
        # the other sweep's trials replace these when it is highlighted (Compare's filter has the focus:
        # go back through the palette's action, not the 6 key)
        await app.run_action("switch_mode('sweeps')")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepsScreen))
        screen.query_one("#sweeps-table", DataTable).focus()
        screen.query_one("#sweeps-table", DataTable).move_cursor(row=1)
        await wait_for(pilot, lambda: screen.selected == old.folder.id and len(screen.trials) == 2)
        await shows(pilot, "2 of 2 trials finished")

    drive(app, scenario, size=(160, 40))


def test_a_running_sweep_updates_live_and_cancel_signals_its_worker(sweeps_home: Path, tmp_path: Path, make_app) -> None:
    sweep = SweepWriter(sweeps_home, tmp_path, "live", 3, 3)
    sweep.tell(0.5)
    # stands in for `still sweep`, which installs its own SIGINT handler (so it stops on SIGINT even when
    # started by a shell that ignores SIGINT for background jobs, as this test process may have been)
    stand_in = "import signal, time; signal.signal(signal.SIGINT, signal.default_int_handler); time.sleep(60)"
    worker = subprocess.Popen([sys.executable, "-c", stand_in])
    try:
        attrs = {**worker_attrs(), "pid": worker.pid, "pid_start": process_start_time(worker.pid)}
        running = sweep.running(attrs)
        app = make_app(sweeps_home)

        async def scenario(pilot) -> None:
            await sweeps_screen(pilot)
            await shows(pilot, "1 of 3 trials finished · 1 running")
            assert f"now: trial {running} (starting)" in screen_text(app)
            assert "running" in screen_text(app)
            sweep.tell(0.9)  # another worker finishes a trial: the poll picks it up
            await shows(pilot, "2 of 3 trials finished · 1 running")
            await wait_for(pilot, lambda: trial_numbers(app)[0] == "2")
            await pilot.press("x")
            await pilot.press("y")
            await notified(pilot, f"sent SIGINT to {worker.pid}")
            await wait_for(pilot, lambda: worker.poll() is not None, what="the worker to stop")
            await pilot.press("x")
            await pilot.press("y")
            await notified(pilot, "has no running worker on this machine")

        drive(app, scenario)
        assert worker.returncode != 0
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait()


async def type_path(pilot: Any, path: Path) -> None:
    """Fill the launch prompt (a key press per character is slow on a busy machine) and submit it."""
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SweepFilePrompt))
    pilot.app.screen.query_one("#sweep-path", Input).value = str(path)
    await pilot.press("enter")


def test_launch_and_resume_start_still_sweep_processes(sweeps_home: Path, tmp_path: Path, make_app) -> None:
    done = SweepWriter(sweeps_home, tmp_path, "done", 1, 4)
    done.tell(0.7)
    bad = tmp_path / "bad-sweep.toml"
    bad.write_text('[sweep]\nconfig = "missing.toml"\n[sweep.space]\n"train.num_epochs" = { type = "int", low = 3, high = 1 }\n')
    app = make_app(sweeps_home)

    async def scenario(pilot) -> None:
        # the command palette offers the screen like every mode
        assert "Go to Sweeps" in [c.title for c in app.get_system_commands(app.screen)]
        await sweeps_screen(pilot)
        await pilot.press("R")
        await notified(pilot, "already finished its 1 trials")
        await pilot.press("n")
        await type_path(pilot, bad)
        await notified(pilot, "started still sweep")
        await pilot.press("n")
        await type_path(pilot, tmp_path / "nope.toml")
        await notified(pilot, "sweep file not found")

    drive(app, scenario)
    logs = list((sweeps_home / "logs").glob("*-sweep-*.log"))
    assert len(logs) == 1
    deadline = time.monotonic() + 120
    while "empty range" not in logs[0].read_text():  # the process checks the file and exits 2
        assert time.monotonic() < deadline, logs[0].read_text()
        time.sleep(0.2)
