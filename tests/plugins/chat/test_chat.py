"""`still chat`: prompts from stdin (not a TTY), the student's streamed answer, /exit, and
--compare with a local and an API teacher."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import stillhouse.plugins.chat as chat_plugin
import stillhouse.plugins.students as students_plugin
import stillhouse.plugins.teachers as teachers_plugin
from tests.plugins.reports.conftest import CONFIG, RUN_ID, write_run

TOKENS = "6"


@pytest.fixture
def still(make_host):
    from stillhouse.kernel.cli import build_cli

    def invoke(*args: str, input: str):
        group = build_cli(make_host(chat_plugin, teachers_plugin, students_plugin, entry_points=False))
        return CliRunner().invoke(group, list(args), input=input)

    return invoke


@pytest.fixture(scope="module")
def chat_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny student with the tokens that decode to nothing or whitespace suppressed in its
    generation config: untrained, it would otherwise answer with newlines only."""
    import shutil

    from transformers import AutoTokenizer, GenerationConfig

    path = tmp_path_factory.mktemp("chat-student") / "model"
    shutil.copytree(tiny_model_dir, path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    config = GenerationConfig.from_pretrained(path)
    config.suppress_tokens = [i for i in range(len(tokenizer)) if not tokenizer.decode([i]).strip()]
    config.save_pretrained(path)
    return path


def make_run(home, student_dir, teacher):
    config = {**CONFIG, "teacher": teacher, "student": {"model": str(student_dir)}}
    return write_run(home / "runs" / RUN_ID, student_dir, config)


def greedy(model_dir, prompt):
    from stillhouse.plugins.hf_models import generate_chat, load_causal_lm

    model, tokenizer = load_causal_lm(str(model_dir), device="cpu")
    [out] = generate_chat(model, tokenizer, [[{"role": "user", "content": prompt}]], max_new_tokens=int(TOKENS))
    return out.text


def test_chat_streams_the_students_greedy_answer_and_stops_at_exit(still, stillhouse_home, chat_model_dir, local_teacher):
    make_run(stillhouse_home, chat_model_dir, local_teacher)
    result = still("chat", RUN_ID, "--max-new-tokens", TOKENS, "--device", "cpu", input="\nHello there\n/exit\nNever asked\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("student> ") == 1  # the blank line is skipped, nothing after /exit
    expected = greedy(chat_model_dir, "Hello there")
    assert expected and f"student> {expected}" in result.output


def test_chat_takes_a_model_folder_and_keeps_the_conversation(still, chat_model_dir):
    result = still("chat", str(chat_model_dir), "--max-new-tokens", TOKENS, "--device", "cpu", input="one\n/reset\ntwo\nthree\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("student> ") == 3
    answers = [line.removeprefix("student> ") for line in result.output.splitlines() if line.startswith("student> ")]
    # after /reset "two" is a fresh conversation, so its answer is the single-turn greedy one
    assert answers[1] == greedy(chat_model_dir, "two")


def test_a_run_without_a_student_is_a_user_error(still, stillhouse_home, chat_model_dir, local_teacher):
    run_dir = make_run(stillhouse_home, chat_model_dir, local_teacher)
    import shutil

    shutil.rmtree(run_dir / "student")
    result = still("chat", RUN_ID, input="hi\n")
    assert result.exit_code == 2
    assert "has no distilled student" in result.output


def test_compare_shows_teacher_baseline_and_distilled_with_latency(still, stillhouse_home, chat_model_dir, local_teacher):
    make_run(stillhouse_home, chat_model_dir, local_teacher)
    result = still("chat", RUN_ID, "--compare", "--max-new-tokens", TOKENS, input="Hello there\n")
    assert result.exit_code == 0, result.output
    for label in ("teacher (", "baseline (", "distilled ("):
        assert label in result.output
    assert result.output.count(" ms)") == 3


def test_compare_asks_an_api_teacher_over_http(still, stillhouse_home, chat_model_dir, fake_server):
    server = fake_server()
    teacher = {"model": "openai/fake-teacher", "api_base": server.url, "max_tokens": 16}
    make_run(stillhouse_home, chat_model_dir, teacher)
    result = still("chat", RUN_ID, "--compare", "--max-new-tokens", TOKENS, input="Hello there\n")
    assert result.exit_code == 0, result.output
    assert "Answer: Hello there" in result.output  # the fake server's reply to the prompt
    assert server.stats.answered_total == 1


def test_compare_needs_a_run(still, chat_model_dir):
    result = still("chat", str(chat_model_dir), "--compare", input="hi\n")
    assert result.exit_code == 2
    assert "--compare needs a RUN_ID" in result.output


def read_until(fd, wanted: bytes, timeout_s: float = 120.0) -> bytes:
    """Read the terminal until ``wanted`` appears (or the child closes it, or the timeout)."""
    import os
    import select
    import time

    seen = b""
    deadline = time.monotonic() + timeout_s
    while wanted not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        seen += data
    return seen


@pytest.mark.slow  # a fresh process importing torch and transformers: 15-35 s on two busy cores
def test_chat_on_a_terminal_prompts_streams_and_exits(chat_model_dir):
    """The real process on a pseudo-terminal: the `you>` prompt, the streamed answer, /exit."""
    import os
    import pty
    import subprocess
    import sys

    main, child = pty.openpty()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, "-c", "from stillhouse.kernel.cli import main; main()", "chat", str(chat_model_dir)]
    proc = subprocess.Popen(
        [*command, "--max-new-tokens", TOKENS, "--device", "cpu"], stdin=child, stdout=child, stderr=child, env=env
    )
    os.close(child)
    try:
        assert b"you> " in read_until(main, b"you> ")
        os.write(main, b"Hello there\n")
        answered = read_until(main, b"you> ")
        assert f"student> {greedy(chat_model_dir, 'Hello there')}".encode() in answered
        os.write(main, b"/exit\n")
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        os.close(main)


def test_a_lora_adapter_alone_is_refused_with_the_way_to_merge_it(still, stillhouse_home, chat_model_dir, local_teacher):
    run_dir = make_run(stillhouse_home, chat_model_dir, local_teacher)
    (run_dir / "student" / "config.json").unlink()
    (run_dir / "student" / "adapter_config.json").write_text("{}")
    result = still("chat", RUN_ID, input="hi\n")
    assert result.exit_code == 2
    assert "LoRA adapter" in result.output and f"still export {RUN_ID} DIR" in result.output
