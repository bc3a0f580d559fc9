"""Secrets are redacted at the source: a provider that echoes the API key in its errors never gets
it into any file of the run home or any output; and a config that holds a secret is refused.

The planted key has no known shape, so only the run's own config (which names its env var) can
tell it is a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from stillhouse.testing.fake_openai import FakeBehaviour, FakeOpenAIServer
from tests.security.helpers import nli_rows, only_run, run_still, write_config

PLANTED = "PLANTED-custom-cred-7f3a9c2e41"  # the env var's name does not say "key" either
WRONG = "PLANTED-wrong-cred-0b8d5e6f93"


def files_holding(root: Path, needle: str) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and needle.encode() in path.read_bytes():
            found.append(str(path.relative_to(root)))
    return found


@pytest.mark.slow
def test_echoed_key_never_reaches_disk_or_output(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"SEC_TEACHER_CRED": PLANTED, "STILLHOUSE_HOME": str(home)}
    # Three prompts fail with a 400 whose message repeats the Authorization header.
    rows = nli_rows(8, mark={1: "[[fail:400]]", 4: "[[fail:400]]", 6: "[[fail:400]]"})
    server = FakeOpenAIServer(FakeBehaviour(api_key=PLANTED, echo_auth=True)).start()
    try:
        config = write_config(tmp_path / "cfg", server.url, rows)
        first = run_still(["run", str(config), "--stage", "generate", "--stage", "filter"], env)
        run_dir = only_run(home)
        # The echo really happened and was recorded (else this test could not fail).
        outputs = (run_dir / "teacher" / "outputs.jsonl").read_text()
        assert "scripted failure 400 (you sent Authorization: Bearer ***REDACTED***)" in outputs
        assert "teacher_error" in (run_dir / "samples.jsonl").read_text()
        # A wrong key: the 401 echoes it; the run stops with the error on stderr (and a traceback).
        server.behaviour.api_key = "something-else-entirely"
        env_wrong = {**env, "SEC_TEACHER_CRED": WRONG}
        second = run_still(["--debug", "run", "--resume", run_dir.name, "--stage", "generate"], env_wrong)
        assert second.returncode != 0
        assert "refused the credentials" in second.stderr and "Traceback" in second.stderr
    finally:
        server.stop()
    planted = 2
    leaks = {
        secret: files_holding(home, secret)
        + [name for name, text in (("stdout", first.stdout + second.stdout), ("stderr", first.stderr + second.stderr)) if secret in text]
        for secret in (PLANTED, WRONG)
    }
    print(f"secrets planted: {planted}; found: {sum(len(v) for v in leaks.values())} ({leaks})")
    assert leaks == {PLANTED: [], WRONG: []}


@pytest.mark.parametrize(
    ("extra", "teacher", "field", "words"),
    [
        ("", 'api_base = "http://admin:hunter2@127.0.0.1:9/v1"', "teacher.api_base", "credentials in its URL"),
        ('name = "run-hf_abcdefghijklmnopqrstuvwxyz0123456789"', "", "name", "looks like a literal API key"),
        ("", 'extra_params = { note = "ghp_abcdefghijklmnopqrstuvwxyz0123456789" }', "teacher.extra_params.note", "literal API key"),
        ("", 'extra_params = { hf_token = "anything" }', "teacher.extra_params.hf_token", "literal secret"),
    ],
)
def test_config_with_a_secret_is_refused(tmp_path: Path, run_still, stillhouse_home, extra, teacher, field, words) -> None:  # noqa: F811
    config = write_config(tmp_path, "http://127.0.0.1:9/v1", nli_rows(2), teacher=teacher, extra=extra)
    if "api_base" in teacher:  # replace the helper's own api_base line
        text = config.read_text().replace('api_base = "http://127.0.0.1:9/v1"\n', "", 1)
        config.write_text(text)
    result = run_still("config", "check", str(config))
    assert result.exit_code == 2, result.output
    assert words in result.output and field in result.output
    line = next(i for i, text in enumerate(config.read_text().splitlines(), 1) if field.split(".")[-1] in text and "=" in text)
    assert f"pipeline.toml:{line}" in result.output
    for secret in ("hunter2", "abcdefghijklmnopqrstuvwxyz0123456789"):
        assert secret not in result.output
