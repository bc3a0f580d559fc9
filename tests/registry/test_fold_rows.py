"""The registry's runs/stages rows come from the kernel's RunState fold, seeded with the stored rows."""

from __future__ import annotations

from typing import Any

from stillhouse.kernel.run_state import fold
from stillhouse.registry.rows import empty_run, fold_rows

T0 = 1_795_000_000.0


def ev(dt: float, type_: str, **payload: Any) -> dict[str, Any]:
    return {"ts": T0 + dt, "run_id": "r", "type": type_, **payload}


EVENTS = [
    ev(0, "run_started", name="n", task="nli", config={"teacher": {"model": "t"}}, pid=3),
    ev(1, "stage_started", stage="generate"),
    ev(2.123457, "stage_finished", stage="generate", summary={"requests": 4}, seconds=1.1),
    ev(3, "stage_started", stage="filter"),
    ev(4, "stage_failed", stage="filter", error="interrupted"),
    ev(5, "run_finished", status="interrupted", error=None),
    ev(6, "run_started", name="n", task="nli", config={"teacher": {"model": "t"}}, resumed=True),
    ev(7, "stage_started", stage="filter"),
]


def rows_after(*batches: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    run, stages = empty_run("r", "/runs/r"), {}
    for batch in batches:
        fold_rows(run, stages, batch)
    return run, stages


def test_rows_say_what_the_kernel_fold_says_in_the_registrys_units() -> None:
    run, stages = rows_after(EVENTS)
    state = fold(EVENTS)  # type: ignore[arg-type]
    assert run["status"] == state.status == "running" and run["starts"] == 2
    assert run["created_at"] == int(T0 * 1_000_000) and run["finished_at"] is None
    assert run["teacher_model"] == "t" and run["primary_metric"] == "accuracy"  # from the config / the task
    assert stages["generate"]["status"] == "finished" and stages["generate"]["seconds"] == 1.1
    assert stages["generate"]["finished_at"] == int((T0 + 2.123457) * 1_000_000)  # exact, not via float seconds
    assert stages["generate"]["summary_json"] == '{"requests": 4}'
    assert stages["filter"]["status"] == "running" and stages["filter"]["attempts"] == 2
    assert set(stages) == {"generate", "filter"}  # no rows for stages no event named


def test_an_interrupted_stage_is_failed_in_the_registrys_vocabulary() -> None:
    run, stages = rows_after(EVENTS[:6])
    assert run["status"] == "interrupted" and run["finished_at"] is not None
    assert stages["filter"]["status"] == "failed" and stages["filter"]["error"] == "interrupted"
    assert fold(EVENTS[:6]).stages["filter"].status == "interrupted"  # type: ignore[arg-type]


def test_folding_in_batches_equals_folding_at_once() -> None:
    whole = rows_after(EVENTS)
    for cut in range(1, len(EVENTS)):
        assert rows_after(EVENTS[:cut], EVENTS[cut:]) == whole, cut
