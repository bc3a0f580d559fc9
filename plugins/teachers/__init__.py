"""Built-in teachers: the ``litellm`` teacher (API models and local ``hf/`` models), and the
``still serve`` command (an OpenAI-compatible server over a local transformers model).

Module-level imports stay light: litellm, torch and aiohttp load only when a teacher runs or a
server starts.
"""

from __future__ import annotations

from typing import Any

from stillhouse.kernel import hookimpl


@hookimpl
def register_teachers(register: Any) -> None:
    from stillhouse.plugins.teachers.litellm_teacher import LiteLLMTeacher

    register(LiteLLMTeacher)


@hookimpl
def register_commands(cli: Any) -> None:
    import click

    @cli.command("serve")
    @click.argument("model")
    @click.option("--port", default=8000, show_default=True, help="TCP port (0: any free port).")
    @click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
    @click.option("--max-batch", default=8, show_default=True, help="Most sequences generated in one batch.")
    @click.option("--dtype", default="auto", show_default=True, help="auto, float32, bfloat16, float16.")
    @click.option("--device", default="auto", show_default=True, help="cpu, cuda, auto.")
    @click.option("--name", default=None, help="Model id clients send and /v1/models lists (default: MODEL).")
    @click.option("--api-key-env", metavar="NAME", help="Require `Authorization: Bearer $NAME` on every /v1 request (401 otherwise).")
    @click.option("--quiet", is_flag=True, help="No access-log line per request.")
    @click.option(
        "--choices",
        metavar="A,B,...",
        help="Constrained choice: answer every chat request with the likeliest of these comma-separated "
        "replies (rank classification, e.g. a distilled classifier's labels), never free text.",
    )
    def serve(
        model: str, port: int, host: str, max_batch: int, dtype: str, device: str, name: str | None, api_key_env: str | None,
        quiet: bool, choices: str | None,
    ) -> None:
        """Serve a local transformers MODEL (folder, hub id or file.gguf) as an OpenAI-compatible API
        (streaming included); one access-log line per request on stderr."""
        import os

        from stillhouse.kernel.errors import UserError
        from stillhouse.plugins.teachers.serve import run_server

        api_key = None
        if api_key_env is not None:
            api_key = os.environ.get(api_key_env)
            if not api_key:
                raise UserError(f"--api-key-env {api_key_env}: the variable is not set or empty", hint=f"export {api_key_env}=<a long random key>")

        labels = None
        if choices is not None:
            labels = [c.strip() for c in choices.split(",")]
            if len(labels) < 2 or any(not c for c in labels) or len(set(labels)) != len(labels):
                raise UserError(
                    f"--choices {choices!r}: give at least two distinct, non-empty replies separated by commas",
                    hint='e.g. --choices "entailment,neutral,contradiction"',
                )

        run_server(
            model,
            host=host,
            port=port,
            max_batch=max_batch,
            dtype=dtype,
            device=device,
            name=name,
            api_key=api_key,
            echo=lambda line: click.echo(line),
            log=None if quiet else lambda line: click.echo(line, err=True),
            choices=labels,
        )
