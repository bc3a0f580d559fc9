"""``train.on_policy`` refused by ``still config check`` (exit 2, file:line and field, the teachers
that can), not only when the train stage starts: the config alone shows these cannot work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stillhouse.kernel.cli import build_cli
from stillhouse.kernel.plugins import get_host


def write(folder: Path, teacher: str, train: str) -> Path:
    (folder / "train.jsonl").write_text(json.dumps({"premise": "a", "hypothesis": "b", "label": "entailment"}) + "\n")
    path = folder / "pipeline.toml"
    path.write_text(
        f'task = "nli"\n[data]\ntrain = "train.jsonl"\n[teacher]\n{teacher}\n[student]\nmodel = "some/student"\n'
        f"[train]\n{train}\n"
    )
    return path


def check(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(build_cli(get_host()), ["config", "check", str(path)], catch_exceptions=False)
    return result.exit_code, result.output


def line_of(path: Path, prefix: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(prefix))


@pytest.mark.parametrize(
    ("teacher", "train", "field", "line_prefix", "words"),
    [
        (  # an API teacher that only answers prompts
            'model = "openai/gpt-4o-mini"',
            'loss = "jsd"\non_policy = { fraction = 0.5 }',
            "teacher.model",
            "model = \"openai",
            "only answers prompts",
        ),
        (  # seq_kd: the teacher would have to sample, a served one only scores
            'model = "openai/tiny"\napi_base = "http://127.0.0.1:9/v1"',
            'loss = "jsd"\non_policy = { fraction = 0.5, seq_kd = true }',
            "train.on_policy.seq_kd",
            "on_policy",
            "needs a local teacher to sample",
        ),
        (  # sft has no term on the teacher's distribution
            'model = "hf/some/teacher"',
            'loss = "sft"\non_policy = { fraction = 1.0 }',
            "train.on_policy",
            "on_policy",
            "imitate itself",
        ),
        (  # jsd with alpha = 0 is cross-entropy only
            'model = "hf/some/teacher"',
            'loss = "jsd"\nloss_options = { alpha = 0.0 }\non_policy = {}',
            "train.on_policy",
            "on_policy",
            "imitate itself",
        ),
    ],
)
def test_config_check_refuses_on_policy_that_cannot_work(
    tmp_path: Path, teacher: str, train: str, field: str, line_prefix: str, words: str
) -> None:
    path = write(tmp_path, teacher, train)
    code, output = check(path)
    assert code == 2, output
    assert words in output and f"field '{field}'" in output
    assert f"pipeline.toml:{line_of(path, line_prefix)}" in output
    assert "Traceback" not in output


def test_the_refusal_lists_the_teachers_that_can(tmp_path: Path) -> None:
    code, output = check(write(tmp_path, 'model = "openai/gpt-4o-mini"', 'loss = "jsd"\non_policy = {}'))
    assert code == 2 and 'teacher.model = "hf/' in output and "still serve" in output and "prompt_logprobs" in output


def test_config_check_accepts_teachers_that_can_score(tmp_path: Path) -> None:
    # No model loads and no server is asked at config-check time: the probe runs when training starts.
    local = write(tmp_path, 'model = "hf/some/teacher"', 'loss = "jsd"\non_policy = { fraction = 0.5, seq_kd = true }')
    code, output = check(local)
    assert code == 0 and output.startswith("ok"), output
    served = write(tmp_path, 'model = "openai/tiny"\napi_base = "http://127.0.0.1:9/v1"', 'loss = "reverse_kl"\non_policy = {}')
    code, output = check(served)
    assert code == 0, output


def test_a_section_header_is_located_too(tmp_path: Path) -> None:
    path = write(tmp_path, 'model = "hf/some/teacher"', 'loss = "sft"\n[train.on_policy]\nfraction = 0.5')
    code, output = check(path)
    assert code == 2 and f"pipeline.toml:{line_of(path, '[train.on_policy]')}" in output, output


def test_with_a_teacher_list_the_primary_entry_is_named(tmp_path: Path) -> None:
    """With [[teachers]] the trainer scores with the list's primary (heaviest) teacher: an API one is
    refused at that entry of the list, and a local one given more weight makes the config valid."""
    (tmp_path / "train.jsonl").write_text(json.dumps({"premise": "a", "hypothesis": "b", "label": "entailment"}) + "\n")
    path = tmp_path / "pipeline.toml"

    def teachers(api_weight: float) -> str:
        return (
            f'task = "nli"\n[data]\ntrain = "train.jsonl"\n\n'
            f'[[teachers]]\nname = "local"\nmodel = "hf/some/teacher"\nweight = 1.0\n\n'
            f'[[teachers]]\nname = "big"\nmodel = "openai/gpt-4o-mini"\nweight = {api_weight}\n\n'
            '[student]\nmodel = "some/student"\n[train]\nloss = "jsd"\non_policy = { fraction = 0.5 }\n'
        )

    path.write_text(teachers(api_weight=2.0))
    code, output = check(path)
    assert code == 2 and "Traceback" not in output
    second_model_line = [i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith("model =")][1]
    assert f"pipeline.toml:{second_model_line}, field 'teachers[1].model'" in output
    assert "primary teacher 'big' (the heaviest)" in output and "only answers prompts" in output
    path.write_text(teachers(api_weight=0.5))
    code, output = check(path)
    assert code == 0, output
