"""``still chat RUN_ID|MODEL``: try a model in the terminal before deploying it.

One model (a run's distilled student, or any local folder / GGUF file / ``hf/`` id) answers with
streamed tokens; ``--compare`` asks the run's teacher, its baseline (the student before
distillation) and its distilled student the same prompt and shows the answers side by side with
each one's latency. Prompts come from the terminal, or one per line from stdin when stdin is not a
TTY (``echo "hi" | still chat RUN_ID``); ``/exit`` leaves, ``/reset`` forgets the conversation.
The work is in ``session.py``; torch and the models are imported on call.
"""

from __future__ import annotations

import click

from stillhouse.kernel import hookimpl


@click.command("chat")
@click.argument("target")
@click.option("--compare", is_flag=True, help="Teacher, baseline and distilled answers side by side (RUN_ID only).")
@click.option("--system", help="A system message sent before the conversation.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, auto (local models).")
def chat_command(target: str, compare: bool, system: str | None, max_new_tokens: int, device: str) -> None:
    """Chat with RUN_ID's distilled student (or a model folder / GGUF file) in the terminal."""
    import sys

    from stillhouse.kernel.plugins import get_host
    from stillhouse.plugins.chat.session import ChatOptions, compare_loop, resolve_target, stream_loop

    options = ChatOptions(system=system, max_new_tokens=max_new_tokens, device=device)
    resolved = resolve_target(target)
    if compare:
        compare_loop(get_host(), resolved, options, sys.stdin)
    else:
        stream_loop(resolved, options, sys.stdin)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(chat_command)
