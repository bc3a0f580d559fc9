"""Config numbers are finite and yes/no options are booleans: `inf` epochs, a `nan` learning rate
or `bf16 = "false"` (a string, which used to mean "auto") are refused with exit 2, file, line and
field, instead of training NaN weights or silently turning an option on."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.helpers import nli_rows, write_config


@pytest.mark.parametrize(
    ("train", "field", "words"),
    [
        ("learning_rate = inf", "train.learning_rate", "finite number"),
        ("learning_rate = nan", "train.learning_rate", "finite number"),
        ("num_epochs = inf", "train.num_epochs", "finite number"),
        ("warmup_ratio = -nan", "train.warmup_ratio", "finite number"),
        ('bf16 = "false"', "train.bf16", "true or false"),
        ('packing = "no"', "train.packing", "true or false"),
        ("group_by_length = 1", "train.group_by_length", "true or false"),
    ],
)
def test_non_finite_numbers_and_string_booleans_are_refused(tmp_path: Path, run_still, train, field, words) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1", nli_rows(2), extra="")
    config.write_text(config.read_text() + f"[train]\n{train}\n")
    result = run_still("config", "check", str(config))
    assert result.exit_code == 2, result.output
    line = len(config.read_text().splitlines())
    assert words in result.output and field in result.output and f"pipeline.toml:{line}" in result.output


def test_valid_booleans_and_auto_still_pass(tmp_path: Path, run_still) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1", nli_rows(2))
    config.write_text(config.read_text() + '[train]\nbf16 = "auto"\npacking = false\nlearning_rate = 1e-4\n')
    result = run_still("config", "check", str(config))
    assert result.exit_code == 0, result.output
