"""The chat loops behind ``still chat``: resolving RUN_ID or a model, reading prompts, streaming
one model's answer, and comparing the teacher, baseline and distilled student."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import click

from stillhouse.kernel.errors import UserError
from stillhouse.kernel.interfaces import Message

EXIT_COMMANDS = ("/exit", "/quit")


@dataclass
class ChatOptions:
    system: str | None = None
    max_new_tokens: int = 256
    device: str = "auto"


@dataclass
class ChatTarget:
    """What ``still chat`` talks to: a model (``model``), and for a run also its config."""

    model: str
    run_id: str | None = None
    config: dict[str, Any] = field(default_factory=dict)


def resolve_target(target: str) -> ChatTarget:
    """An existing path or ``hf/<id>`` is a model; anything else names a run, whose distilled
    student is the model (a run without one is a UserError)."""
    from stillhouse.kernel.runs import Run

    if target.startswith("hf/"):
        return ChatTarget(target[3:])
    if Path(target).exists():
        return ChatTarget(target)
    run = Run.open(target)
    student = run.folder.student
    if not (student / "config.json").exists() and not (student / "adapter_config.json").exists():
        raise UserError(
            f"run {run.id} has no distilled student (no {student})",
            hint="chat with a finished run, or give a model folder or GGUF file",
        )
    return ChatTarget(str(student), run.id, run.config)


def read_prompts(stdin: IO[str]) -> Iterator[str]:
    """Prompts from the terminal (with a ``you>`` prompt) or one per line from a pipe; stops at
    end of input or ``/exit``. Blank lines are skipped."""
    interactive = stdin.isatty()
    while True:
        if interactive:
            try:
                line = input("you> ")
            except EOFError:
                return
        else:
            line = stdin.readline()
            if not line:
                return
        line = line.strip()
        if not line:
            continue
        if line in EXIT_COMMANDS:
            return
        yield line


def _start(options: ChatOptions) -> list[Message]:
    return [{"role": "system", "content": options.system}] if options.system else []


def stream_reply(model: Any, tokenizer: Any, messages: list[Message], max_new_tokens: int, out: IO[str]) -> str:
    """Generate greedily with ``TextIteratorStreamer``, writing each piece to ``out`` as it
    arrives; return the whole reply."""
    import torch
    from transformers import TextIteratorStreamer

    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    device = next(model.parameters()).device
    enc = {k: v.to(device) for k, v in tokenizer(text, return_tensors="pt", add_special_tokens=False).items()}
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    failure: list[BaseException] = []

    def generate() -> None:
        try:
            with torch.inference_mode():
                model.generate(
                    **enc,
                    streamer=streamer,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                )
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            failure.append(exc)
            streamer.end()

    thread = threading.Thread(target=generate, daemon=True)
    thread.start()
    pieces: list[str] = []
    for piece in streamer:
        if not pieces:
            piece = piece.lstrip()  # the reply as generate_chat returns it: no leading whitespace
            if not piece:
                continue
        pieces.append(piece)
        out.write(piece)
        out.flush()
    thread.join()
    if failure:
        raise failure[0]
    return "".join(pieces).strip()


def stream_loop(target: ChatTarget, options: ChatOptions, stdin: IO[str]) -> None:
    """Chat with one model, keeping the conversation (``/reset`` starts over)."""
    import sys

    from stillhouse.plugins.hf_models import load_causal_lm

    folder = Path(target.model)
    if (folder / "adapter_config.json").exists() and not (folder / "config.json").exists():
        raise UserError(
            f"{folder} holds a LoRA adapter, not a whole model",
            hint=f"merge it first: still export {target.run_id or 'RUN_ID'} DIR, then still chat DIR (or use --compare)",
        )
    model, tokenizer = load_causal_lm(target.model, device=options.device)
    label = f"run {target.run_id}'s distilled student" if target.run_id else target.model
    click.echo(f"Chatting with {label}. /exit to leave, /reset to start over.", err=True)
    messages = _start(options)
    for prompt in read_prompts(stdin):
        if prompt == "/reset":
            messages = _start(options)
            continue
        messages.append({"role": "user", "content": prompt})
        sys.stdout.write("student> ")
        start = time.perf_counter()
        reply = stream_reply(model, tokenizer, messages, options.max_new_tokens, sys.stdout)
        sys.stdout.write("\n")
        sys.stdout.flush()
        click.echo(f"({(time.perf_counter() - start) * 1000:.0f} ms)", err=True)
        messages.append({"role": "assistant", "content": reply})


def compare_models(host: Any, target: ChatTarget) -> list[tuple[str, Any]]:
    """(label, ChatModel) for the run's teacher, baseline and distilled student."""
    from stillhouse.kernel.evaluation import student_model, teacher_model
    from stillhouse.kernel.interfaces import Teacher

    if target.run_id is None:
        raise UserError("--compare needs a RUN_ID (it compares the run's teacher, baseline and distilled student)")
    config = target.config
    teacher_raw = dict(config.get("teacher") or {})
    student_raw = dict(config.get("student") or {})
    if not teacher_raw.get("model") or not student_raw.get("model"):
        raise UserError(f"run {target.run_id}'s config names no teacher or student model to compare")
    teacher_cls = host.get(Teacher, teacher_raw.get("backend", "litellm"))
    teacher_raw["temperature"] = 0.0
    try:
        teacher_config = teacher_cls.Config.model_validate(teacher_raw)
    except ValueError as exc:
        raise UserError(f"run {target.run_id}'s config cannot be read back: {exc}") from None
    student_config = _student_config(host, student_raw)
    models = [("teacher", teacher_model(teacher_cls(teacher_config))[0])]
    models.append(("baseline", student_model(host, student_config, None)[0]))
    models.append(("distilled", student_model(host, student_config, Path(target.model))[0]))
    return models


def _student_config(host: Any, raw: dict[str, Any]) -> Any:
    """The run's ``[student]`` section validated by its trainer's own config model."""
    from stillhouse.kernel.interfaces import StudentTrainer

    trainer_cls = host.get(StudentTrainer, raw.get("trainer", "hf"))
    try:
        return trainer_cls.Config.model_validate(raw)
    except ValueError as exc:
        raise UserError(f"the run's [student] section cannot be read back: {exc}") from None


def compare_loop(host: Any, target: ChatTarget, options: ChatOptions, stdin: IO[str]) -> None:
    """Each prompt alone (no conversation history) to teacher, baseline and distilled student;
    the answers side by side with their latency."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    models = compare_models(host, target)
    console = Console()
    click.echo(f"Comparing run {target.run_id}: {', '.join(label for label, _ in models)}. /exit to leave.", err=True)
    try:
        for prompt in read_prompts(stdin):
            messages = [*_start(options), {"role": "user", "content": prompt}]
            table = Table(title=prompt, show_lines=True, expand=True)
            cells = []
            for label, model in models:
                start = time.perf_counter()
                [answer] = model.answer([messages], max_new_tokens=options.max_new_tokens, batch_size=1)
                latency_ms = answer.latency_ms or (time.perf_counter() - start) * 1000
                table.add_column(f"{label} ({latency_ms:.0f} ms)", overflow="fold")
                cells.append(Text(f"[error: {answer.error}]" if answer.error else answer.text))
            table.add_row(*cells)
            console.print(table)
    finally:
        for _, model in models:
            model.close()
