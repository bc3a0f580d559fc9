"""Run ids cannot leave $STILLHOUSE_HOME/runs, and empty or ambiguous ids are refused (issue 19,
"Medium-high"). Every door that turns an id into a path goes through kernel/runs.py's resolver."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from stillhouse.kernel.errors import RunNotFoundError
from stillhouse.kernel.runs import Run, check_run_id, resolve_run_dir, run_folder
from stillhouse.testing.sample_runs import standard_runs, write_run
from tests.security.helpers import env_for, resumable_run, still_exe


@pytest.fixture
def victim(stillhouse_home: Path) -> Path:
    """A folder beside the home that looks like a run (config.json, events.jsonl) and must stay as it is."""
    folder = stillhouse_home.parent / "victim"
    folder.mkdir()
    (folder / "config.json").write_text((resumable_run(stillhouse_home) / "config.json").read_text())
    (folder / "events.jsonl").write_text("")
    (folder / "keep.txt").write_text("precious\n")
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


PATH_IDS = ["../../victim", "../victim", "../../../../../etc", "/etc", "/tmp", "..", ".", "a/../../victim"]


@pytest.mark.parametrize("run_id", PATH_IDS + ["", "  "])
def test_the_resolver_refuses_paths_and_empty_ids(stillhouse_home: Path, victim: Path, run_id: str) -> None:
    with pytest.raises(RunNotFoundError) as info:
        Run.open(run_id)
    assert info.value.exit_code == 2
    with pytest.raises(RunNotFoundError):
        run_folder(run_id)


def test_resume_with_a_path_id_writes_nothing_outside(stillhouse_home: Path, victim: Path) -> None:
    before = snapshot(victim)
    for run_id in ("../../victim", "../victim", "../../../../../etc"):
        done = subprocess.run(
            [still_exe(), "run", "--resume", run_id], env=env_for(stillhouse_home), capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 2, done.stderr
        assert "is not a run id" in done.stderr and "Traceback" not in done.stderr
    assert snapshot(victim) == before


def test_export_with_a_path_id_reads_nothing_outside(stillhouse_home: Path, victim: Path, run_still, tmp_path: Path) -> None:
    result = run_still("export", "../victim", str(tmp_path / "out"))
    assert result.exit_code == 2 and "is not a run id" in result.output
    assert not (tmp_path / "out").exists()


def test_runs_rm_with_an_empty_id_deletes_nothing(stillhouse_home: Path, run_still) -> None:
    only = write_run(stillhouse_home, standard_runs()[0])
    for run_id in ("", " "):
        result = run_still("runs", "rm", run_id, "-y")
        assert result.exit_code == 2 and "empty run id" in result.output
    assert only.is_dir()
    for args in (["runs", "show", ""], ["runs", "compare", "", only.name], ["export", "", "out"], ["run", "--resume", ""]):
        result = run_still(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "empty run id" in result.output
    assert only.is_dir()


def test_path_ids_are_refused_by_every_command(stillhouse_home: Path, victim: Path, run_still) -> None:
    write_run(stillhouse_home, standard_runs()[0])
    before = snapshot(victim)
    for args in (["runs", "rm", "../victim", "-y"], ["runs", "show", "/etc"], ["runs", "compare", "../victim", ".."]):
        result = run_still(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "is not a run id" in result.output
    assert snapshot(victim) == before and victim.is_dir()


def test_an_imported_registry_row_with_a_path_id_cannot_delete_outside(
    stillhouse_home: Path, victim: Path, run_still
) -> None:
    """`still registry import` can bring any run_id string; rm must still not leave runs/."""
    from stillhouse.registry.db import write_connection

    write_run(stillhouse_home, standard_runs()[0])
    run_still("sql", "select 1")  # ingest the real run first
    with write_connection(stillhouse_home) as con:
        con.execute("INSERT INTO runs (run_id, status) VALUES ('victim\n', 'completed')")
    result = run_still("runs", "rm", "victim", "-y")
    assert result.exit_code == 2
    assert victim.is_dir() and (victim / "keep.txt").exists()


def test_a_symlink_in_runs_does_not_lead_outside(stillhouse_home: Path, victim: Path, run_still) -> None:
    (stillhouse_home / "runs").mkdir(exist_ok=True)
    (stillhouse_home / "runs" / "evil").symlink_to(victim)
    with pytest.raises(RunNotFoundError) as info:
        Run.open("evil")
    assert "leads outside" in info.value.what
    result = run_still("export", "evil", str(stillhouse_home / "out"))
    assert result.exit_code == 2
    assert snapshot(victim)["keep.txt"] == b"precious\n"


def test_ambiguous_ids_are_refused_and_unique_parts_resolve(stillhouse_home: Path, run_still) -> None:
    a = write_run(stillhouse_home, standard_runs()[0])
    b = write_run(stillhouse_home, standard_runs()[1])
    with pytest.raises(RunNotFoundError) as info:
        resolve_run_dir("090000")
    assert "matches 2 runs" in info.value.what
    assert resolve_run_dir(a.name[-6:]) == a and resolve_run_dir(b.name) == b
    result = run_still("runs", "rm", "090000", "-y")
    assert result.exit_code == 2 and "matches" in result.output
    assert a.is_dir() and b.is_dir()


def test_tui_resume_and_cancel_refuse_path_ids(stillhouse_home: Path, victim: Path) -> None:
    from stillhouse.tui.launch import resume_run

    for run_id in ("../victim", "", "/etc"):
        with pytest.raises(RunNotFoundError):
            resume_run(run_id, stillhouse_home)
        with pytest.raises(RunNotFoundError):
            run_folder(run_id, stillhouse_home)  # the cancel action's door


def test_check_run_id_accepts_real_ids() -> None:
    for run in standard_runs():
        assert check_run_id(run.run_id) == run.run_id


def test_registry_import_refuses_path_run_ids(stillhouse_home: Path, run_still, tmp_path: Path) -> None:
    """The registry is the other source of ids (`runs rm` deletes runs/<id>): an export whose
    runs.csv holds a path as an id is refused whole."""
    write_run(stillhouse_home, standard_runs()[0])
    out = tmp_path / "export"
    assert run_still("registry", "export", str(out), "--format", "csv").exit_code == 0
    runs_csv = out / "runs.csv"
    runs_csv.write_text(runs_csv.read_text().replace(standard_runs()[0].run_id, "../../victim"))
    other = tmp_path / "other-home"
    other.mkdir()
    result = run_still("registry", "import", str(out), env={"STILLHOUSE_HOME": str(other)})
    assert result.exit_code == 2 and "'../../victim'" in result.output
    done = run_still("sql", "select count(*) AS n from runs", "--format", "csv", env={"STILLHOUSE_HOME": str(other)})
    assert done.stdout.splitlines() == ["n", "0"]
