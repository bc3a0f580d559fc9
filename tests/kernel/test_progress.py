"""What `still run` prints: one line per stage, no None, an error once, other libraries' bars off."""

from __future__ import annotations

import os
import subprocess
import sys

from click.testing import CliRunner

from stillhouse.kernel.cli import build_cli
from stillhouse.kernel.progress import ProgressPrinter, _summary_line


def run_cli(host, *args):
    return CliRunner().invoke(build_cli(host), list(args), catch_exceptions=False)


def test_summary_line_leaves_out_what_was_not_measured():
    line = _summary_line({"steps": 4, "best_eval_loss": None, "final_loss": 0.123456, "incomplete": False})
    assert line == "steps=4 final_loss=0.1235"


def test_a_failed_stage_prints_its_error_once(fake_host, pipeline_config):
    result = run_cli(fake_host, "run", str(pipeline_config()), "--stage", "train")
    assert result.exit_code == 1
    assert result.output.count("no filtered samples to train on") == 1, result.output
    assert "failed train" in result.output and "hint: run the filter stage first" in result.output


def test_a_run_prints_no_none(fake_host, pipeline_config):
    result = run_cli(fake_host, "run", str(pipeline_config()))
    assert result.exit_code == 0, result.output
    assert "None" not in result.output and "done train" in result.output


def test_loading_line_names_the_local_model():
    printer = ProgressPrinter()
    printer._config = {"teacher": {"model": "hf/some/teacher"}, "student": {"model": "tiny"}}
    assert printer._loading_line("generate") == "loading teacher model hf/some/teacher …"
    assert printer._loading_line("train") == "loading student model tiny …"
    printer._config["teacher"] = {"model": "openai/gpt-4o-mini"}
    assert printer._loading_line("generate") is None  # an API teacher loads nothing


def test_third_party_progress_bars_are_off_in_the_cli_process():
    """Set before transformers is imported, transformers' and tqdm's bars are disabled."""
    code = (
        "from stillhouse.kernel.progress import quiet_third_party_progress; quiet_third_party_progress(); "
        "import tqdm, huggingface_hub.utils as u, datasets; "
        "print(u.are_progress_bars_disabled(), tqdm.tqdm(range(3)).disable, datasets.is_progress_bar_enabled())"
    )
    quiet = ("HF_HUB_DISABLE_PROGRESS_BARS", "TQDM_DISABLE", "HF_DATASETS_DISABLE_PROGRESS_BARS")
    env = {k: v for k, v in os.environ.items() if k not in quiet}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["True", "True", "False"] and out.stderr == ""


def test_plugins_has_a_header_row(fake_host):
    lines = run_cli(fake_host, "plugins").output.splitlines()
    assert lines[0].split() == ["PLUGIN", "FROM", "PROVIDES"]
