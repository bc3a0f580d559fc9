"""Stopping a real `still run` process: SIGINT (Ctrl-C) and SIGTERM (kill, service managers) print
"stopping at the next safe point…" at once, record the run "interrupted" (never left "running"),
and `--resume` completes it. How long each stop took is printed, never asserted."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from stillhouse.kernel.runs import read_jsonl
from stillhouse.testing.fake_openai import FakeBehaviour, FakeOpenAIServer
from tests.security.helpers import nli_rows, only_run, still, write_config


def events(run_dir: Path, kind: str) -> list[dict]:
    return [e for e in read_jsonl(run_dir / "events.jsonl") if e["type"] == kind]


class Watched:
    """A `still` subprocess whose stderr lines are collected with the time they arrived."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(still(*args), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self.seen: list[tuple[float, str]] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put((time.monotonic(), line))

    def first(self, text: str, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                at, line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append((at, line))
            if text in line:
                return at
        return None


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_generate_stops_at_once_and_resume_completes(tmp_path: Path, signum: int) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "SEC_TEACHER_CRED": "test-key-123456", "STILLHOUSE_HOME": str(home)}
    server = FakeOpenAIServer(FakeBehaviour(latency_s=0.5)).start()
    try:
        config = write_config(tmp_path / "cfg", server.url, nli_rows(), teacher="timeout = 60")
        run = Watched(["run", str(config), "--stage", "generate"], env)
        deadline = time.monotonic() + 240
        while not list(home.glob("runs/*/teacher/outputs.jsonl")) or len(list(read_jsonl(next(home.glob("runs/*/teacher/outputs.jsonl"))))) < 2:
            assert run.process.poll() is None, run.process.communicate()
            assert time.monotonic() < deadline, "no teacher outputs appeared"
            time.sleep(0.02)
        sent = time.monotonic()
        run.process.send_signal(signum)
        said = run.first("stopping at the next safe point", timeout=30)
        code = run.process.wait(timeout=120)
        ended = time.monotonic()
        print(f"{signal.Signals(signum).name} during generate: message after {(said or ended) - sent:.2f} s, exit after {ended - sent:.2f} s")
        assert said is not None, run.seen
        assert code == 130
        run_dir = only_run(home)
        assert events(run_dir, "run_finished")[-1]["status"] == "interrupted"
        assert events(run_dir, "stage_failed")[-1] == {**events(run_dir, "stage_failed")[-1], "stage": "generate", "error": "interrupted"}
        before = sum(server.stats.answered.values())
        assert before < 24

        server.behaviour.latency_s = 0.0
        resumed = subprocess.run(still("run", "--resume", run_dir.name, "--stage", "generate"), env=env, capture_output=True, text=True, timeout=240)
    finally:
        server.stop()
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert events(run_dir, "run_finished")[-1]["status"] == "completed"
    assert events(run_dir, "stage_finished")[-1]["summary"]["answered"] == 24
    twice = [p for p, n in server.stats.answered.items() if n > 1]
    print(f"answered before the stop: {before}; answered twice: {len(twice)}")
    assert len(server.stats.answered) == 24 and twice == []  # calls in flight finished within the grace


@pytest.mark.slow
def test_second_ctrl_c_stops_now_and_the_run_stays_resumable(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "SEC_TEACHER_CRED": "test-key-123456", "STILLHOUSE_HOME": str(home)}
    # Answers take 20 s: the first Ctrl-C waits for them (up to the grace), the second does not.
    server = FakeOpenAIServer(FakeBehaviour(latency_s=20)).start()
    try:
        config = write_config(tmp_path / "cfg", server.url, nli_rows(6), teacher="timeout = 60")
        run = Watched(["run", str(config), "--stage", "generate"], env)
        deadline = time.monotonic() + 240
        while server.stats.inflight < 2:
            assert run.process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        sent = time.monotonic()
        run.process.send_signal(signal.SIGINT)
        assert run.first("stopping at the next safe point", timeout=30) is not None
        run.process.send_signal(signal.SIGINT)
        code = run.process.wait(timeout=120)
        print(f"two Ctrl-C: exit after {time.monotonic() - sent:.2f} s")
        assert code == 130
        run_dir = only_run(home)
        assert events(run_dir, "run_finished")[-1]["status"] == "interrupted"
        server.behaviour.latency_s = 0.0
        resumed = subprocess.run(still("run", "--resume", run_dir.name, "--stage", "generate"), env=env, capture_output=True, text=True, timeout=240)
    finally:
        server.stop()
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert events(run_dir, "stage_finished")[-1]["summary"]["answered"] == 6


@pytest.mark.slow
def test_sigint_during_train_stops_between_steps_and_resume_completes(tmp_path: Path, stillhouse_home: Path, tiny_model_dir: Path) -> None:
    from stillhouse.kernel.config import load_config
    from stillhouse.kernel.pipeline import Pipeline
    from stillhouse.kernel.plugins import PluginHost
    from stillhouse.kernel.runs import append_jsonl
    from tests.integration.test_distributed_train import FIXTURE, accepted_sample

    (tmp_path / "train.jsonl").write_text(FIXTURE.read_text())
    config = tmp_path / "pipeline.toml"
    config.write_text(
        f'task = "nli"\n[data]\ntrain = "train.jsonl"\n[teacher]\nmodel = "openai/unused"\n'
        f'[student]\nmodel = "{tiny_model_dir}"\n[train]\nbatch_size = 2\nmax_steps = 2000\nlogging_steps = 1\nsave_steps = 1000\n'
    )
    host = PluginHost()
    pipeline = Pipeline.create(load_config(config, host), host)
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    append_jsonl(pipeline.run.path("samples.jsonl"), [accepted_sample(pipeline.task, r) for r in rows])
    for stage in ("generate", "filter"):  # as if those stages had run
        pipeline.run.emit("stage_finished", stage=stage, summary={})
    run_dir = pipeline.run.dir
    env = {**os.environ, "STILLHOUSE_HOME": str(stillhouse_home)}

    run = Watched(["run", "--resume", pipeline.run.id, "--stage", "train"], env)
    deadline = time.monotonic() + 300
    while not [e for e in events(run_dir, "progress") if e.get("stage") == "train" and e["done"] >= 3]:
        assert run.process.poll() is None, run.process.communicate()
        assert time.monotonic() < deadline, "training made no progress"
        time.sleep(0.05)
    sent = time.monotonic()
    run.process.send_signal(signal.SIGINT)
    said = run.first("stopping at the next safe point", timeout=30)
    code = run.process.wait(timeout=120)
    print(f"SIGINT during train: message after {(said or sent) - sent:.2f} s, exit after {time.monotonic() - sent:.2f} s")
    assert said is not None and code == 130
    assert events(run_dir, "run_finished")[-1]["status"] == "interrupted"
    checkpoints = sorted(run_dir.glob("checkpoints/checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert checkpoints, "the stop saved no checkpoint"
    step = int(checkpoints[-1].name.split("-")[1])
    assert step < 2000 and not (run_dir / "student").exists()

    resumed = subprocess.run(
        still("run", "--resume", pipeline.run.id, "--stage", "train", "--set", f"train.max_steps={step + 2}"),
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert events(run_dir, "run_finished")[-1]["status"] == "completed"
    assert events(run_dir, "stage_finished")[-1]["summary"]["resumed_from"] == checkpoints[-1].name
    assert (run_dir / "student").exists()


def test_local_generation_stops_between_decoding_steps(tiny_teacher_dir: Path) -> None:
    from stillhouse.plugins.hf_models import generate_chat, load_causal_lm

    model, tokenizer = load_causal_lm(str(tiny_teacher_dir), device="cpu")
    model.generation_config.eos_token_id = None  # a random tiny model could end early on its own
    prompts = [[{"role": "user", "content": f"question {i}"}] for i in range(4)]
    calls = 0

    def stop_after_three_steps() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3

    started = time.perf_counter()
    outputs = generate_chat(model, tokenizer, prompts, max_new_tokens=300, batch_size=2, should_stop=stop_after_three_steps)
    print(f"stopped local generation after {time.perf_counter() - started:.2f} s")
    # The first batch stopped after a few tokens of 300; the second never started.
    assert len(outputs) == 2 and all(o.completion_tokens <= 4 for o in outputs)
