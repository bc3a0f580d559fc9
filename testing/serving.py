"""``still serve`` as a child process for tests: started on a free port, its output drained, stopped
afterwards. One launcher for the ``openai_server`` fixture and the serve tests."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LISTENING = re.compile(r"at (http://127\.0\.0\.1:\d+/v1)")


@contextmanager
def serve_model(model: str | Path, *args: str, start_timeout: float = 180.0) -> Iterator[str]:
    """Run ``still serve MODEL --port 0 ARGS...`` and yield its ``api_base`` once it listens.

    Its output is read on a thread for as long as it runs, so a server that logs every request
    never blocks on a full pipe. Stopped with SIGTERM (then killed) when the block ends."""
    command = [sys.executable, "-m", "stillhouse.kernel.cli", "serve", str(model), "--port", "0", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, name="still-serve-output", daemon=True).start()
    seen: list[str] = []
    try:
        while True:
            try:
                line = lines.get(timeout=start_timeout)
            except queue.Empty:
                raise RuntimeError(f"`still serve` did not start in {start_timeout:.0f} s:\n{''.join(seen)}") from None
            if line is None:
                raise RuntimeError(f"`still serve` exited with {process.wait()}:\n{''.join(seen)}")
            seen.append(line)
            match = LISTENING.search(line)
            if match:
                break
        yield match.group(1)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
