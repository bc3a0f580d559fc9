"""A sweep file with a mistake stops with exit 2 before any trial: the message names the sweep
file, the line and the field, and no sweep folder is made."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import SPACE, write_pipeline, write_sweep

CASES = [
    # (what is wrong, [sweep] body, space, words the error must contain)
    (
        "unknown config key",
        "",
        '[sweep.space]\n"train.learnin_rate" = { type = "float", low = 1e-4, high = 1e-2 }\n',
        ["train.learnin_rate", "did you mean 'learning_rate'", 'sweep.space."train.learnin_rate"', "sweep.toml:5"],
    ),
    (
        "empty range",
        "",
        '[sweep.space]\n"train.learning_rate" = { type = "float", low = 1e-2, high = 1e-4 }\n',
        ["empty range", 'sweep.space."train.learning_rate"', "sweep.toml:5"],
    ),
    (
        "categorical value the model rejects",
        "",
        '[sweep.space]\n"train.batch_size" = { type = "categorical", choices = [4, 0] }\n',
        ["the value 0 is refused", "train.batch_size", 'sweep.space."train.batch_size"', "sweep.toml:5"],
    ),
    (
        "categorical value naming no plugin",
        "",
        '[sweep.space]\n"train.loss" = { type = "categorical", choices = ["sft", "fwd_kl"] }\n',
        ['"fwd_kl" is refused', 'sweep.space."train.loss"', "sweep.toml:5"],
    ),
    (
        "objective metric the task does not report",
        "[sweep.objective]\nmetric = \"rouge_l\"\n",
        SPACE,
        ["does not report the metric 'rouge_l'", "sweep.objective.metric", "sweep.toml:4", "accuracy"],
    ),
    (
        "timeout in a bad format",
        'timeout = "2 hours"\n',
        SPACE,
        ["not a duration", "sweep.timeout", "sweep.toml:3"],
    ),
    (
        "pruning a multi-objective study",
        'pruner = "median"\n[sweep.objective]\nsecond = "latency"\n',
        SPACE,
        ["cannot prune a multi-objective", "sweep.pruner", "sweep.toml:3"],
    ),
]


@pytest.mark.parametrize(("what", "body", "space", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_sweep_file_exits_2_naming_the_field(what, body, space, words, tmp_path: Path, run_still, stillhouse_home: Path) -> None:
    write_pipeline(tmp_path, "http://127.0.0.1:9/v1", Path("unused-student"))
    sweep = write_sweep(tmp_path, body=body, space=space)
    result = run_still("sweep", str(sweep))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, (word, result.output)
    assert not (stillhouse_home / "sweeps").exists()  # nothing was started


def test_bad_timeout_option_and_missing_pipeline_config(tmp_path: Path, run_still, stillhouse_home: Path) -> None:
    write_pipeline(tmp_path, "http://127.0.0.1:9/v1", Path("unused-student"))
    sweep = write_sweep(tmp_path)
    result = run_still("sweep", str(sweep), "--timeout", "soon")
    assert result.exit_code == 2 and "--timeout" in result.output and "not a duration" in result.output, result.output

    missing = write_sweep(tmp_path, config="nope.toml")
    result = run_still("sweep", str(missing))
    assert result.exit_code == 2 and "sweep.config" in result.output and "nope.toml" in result.output, result.output
    assert not (stillhouse_home / "sweeps").exists()


def test_unknown_sweep_id_is_a_user_error(run_still, stillhouse_home: Path) -> None:
    for args in (("show", "no-such-sweep"), ("--resume", "no-such-sweep")):
        result = run_still("sweep", *args)
        assert result.exit_code == 2 and "no-such-sweep" in result.output, result.output


def test_trial_config_of_a_pipeline_with_evaluator_options_validates(tmp_path: Path) -> None:
    """A pipeline with the default evaluators and [evaluate.options.latency] (the demo's config):
    a trial measures task metrics only, so the latency options must go with the latency evaluator —
    found when the first sweep over the demo failed every trial with 'options for evaluator latency'."""
    from stillhouse.kernel.config import validate_config
    from stillhouse.kernel.plugins import get_host
    from stillhouse.plugins.sweep.spec import load_sweep
    from stillhouse.plugins.sweep.trial import check_trial_config, trial_config

    pipeline = write_pipeline(tmp_path, "http://127.0.0.1:9/v1", Path("unused-student"))
    text = pipeline.read_text().replace('evaluators = ["task_metrics"]\n', "")
    pipeline.write_text(text + "\n[evaluate.options.latency]\nsingle_requests = 3\n")
    host = get_host()
    sweep = load_sweep(str(write_sweep(tmp_path)), host)
    check_trial_config(sweep, host)  # raised ConfigError before the fix
    raw = trial_config(sweep, "s", 1, {"train.learning_rate": 1e-3})
    assert raw["evaluate"]["evaluators"] == ["task_metrics"]
    assert "latency" not in raw["evaluate"].get("options", {})
    validate_config(raw, host, source="trial", base_dir=tmp_path)
