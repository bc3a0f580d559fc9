"""Worker processes that make litellm calls, for ``workers > 1``.

litellm spends about 3 ms of CPU on each call (request building, response objects, cost lookup),
so one process tops out near 300 calls/s however fast the server is. A :class:`WorkerPool` spreads
the attempts over N child processes, each with its own event loop and litellm; everything else —
queueing, retries, rate limits, budget, cache — stays in the engine of the parent, so the policy is
the same whatever the worker count.

The protocol is length-prefixed pickles over the child's stdin/stdout (the child's own stdout is
redirected to stderr, so a stray print cannot corrupt it): ``("init", config_json)`` then
``("call", id, messages, timeout)``; the child answers ``("ready",)`` and ``("result", id, Reply |
Failure)``. A child exits when its stdin closes, so none outlives its parent.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import pickle
import struct
import subprocess
import sys
import threading
from typing import IO, Any

from stillhouse.kernel.interfaces import Message
from stillhouse.kernel.teaching.replies import Failure, Reply
from stillhouse.plugins.teachers.config import LiteLLMTeacherConfig

_HEADER = struct.Struct("!I")
STARTUP_TIMEOUT_S = 120.0


def write_message(stream: IO[bytes], message: Any) -> None:
    blob = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(blob)) + blob)
    stream.flush()


def read_message(stream: IO[bytes]) -> Any:
    """The next message, or None at end of stream."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    blob = stream.read(size)
    if len(blob) < size:
        return None
    return pickle.loads(blob)


class _Worker:
    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.alive = True
        self.lock = threading.Lock()

    def send(self, message: Any) -> None:
        assert self.process.stdin is not None
        with self.lock:
            write_message(self.process.stdin, message)


class WorkerPool:
    """Makes single attempts in child processes; same ``call`` contract as LiteLLMCaller."""

    def __init__(self, config: LiteLLMTeacherConfig, processes: int) -> None:
        self.config = config
        self.processes = processes
        self.workers: list[_Worker] = []
        self._ids = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        payload = self.config.model_dump_json()
        ready: list[asyncio.Future[Any]] = []
        for _ in range(self.processes):
            process = subprocess.Popen(
                [sys.executable, "-m", "stillhouse.plugins.teachers.workers"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            worker = _Worker(process)
            started = self._loop.create_future()
            worker.pending[-1] = started
            worker.send(("init", payload))
            threading.Thread(target=self._read, args=(worker,), daemon=True, name="stillhouse-worker-reader").start()
            self.workers.append(worker)
            ready.append(started)
        results = await asyncio.wait_for(asyncio.gather(*ready), STARTUP_TIMEOUT_S)
        for result in results:
            if isinstance(result, Failure):  # e.g. a config problem found by the child
                await self.aclose()
                from stillhouse.kernel.errors import TeacherError

                raise TeacherError(f"a teacher worker process failed to start: {result.message}")

    def _read(self, worker: _Worker) -> None:
        """Reader thread: hand each answer to the loop; fail everything pending when the child dies."""
        assert worker.process.stdout is not None and self._loop is not None
        loop = self._loop
        while True:
            message = read_message(worker.process.stdout)
            if message is None:
                break
            if message[0] == "ready":
                loop.call_soon_threadsafe(self._resolve, worker, -1, None)
            elif message[0] == "result":
                loop.call_soon_threadsafe(self._resolve, worker, message[1], message[2])
        loop.call_soon_threadsafe(self._died, worker)

    @staticmethod
    def _resolve(worker: _Worker, call_id: int, result: Any) -> None:
        future = worker.pending.pop(call_id, None)
        if future is not None and not future.done():
            future.set_result(result)

    @staticmethod
    def _died(worker: _Worker) -> None:
        worker.alive = False
        for future in worker.pending.values():
            if not future.done():
                future.set_result(Failure("connection", f"teacher worker process {worker.process.pid} exited"))
        worker.pending.clear()

    async def call(self, messages: list[Message], timeout: float) -> Reply | Failure:
        alive = [w for w in self.workers if w.alive]
        if not alive:
            return Failure("internal", "every teacher worker process has exited (see the log above for why)")
        worker = min(alive, key=lambda w: len(w.pending))
        call_id = next(self._ids)
        assert self._loop is not None
        future = self._loop.create_future()
        worker.pending[call_id] = future
        try:
            worker.send(("call", call_id, messages, timeout))
        except (BrokenPipeError, OSError):
            worker.pending.pop(call_id, None)
            return Failure("connection", f"teacher worker process {worker.process.pid} is gone")
        try:
            return await future
        finally:
            worker.pending.pop(call_id, None)

    async def aclose(self) -> None:
        for worker in self.workers:
            try:
                if worker.process.stdin is not None:
                    worker.process.stdin.close()
            except OSError:
                pass
        for worker in self.workers:
            try:
                await asyncio.get_running_loop().run_in_executor(None, worker.process.wait, 10)
            except subprocess.TimeoutExpired:
                worker.process.kill()
        self.workers.clear()


def _serve(inp: IO[bytes], out: IO[bytes]) -> None:
    """The child's main loop."""
    from stillhouse.plugins.teachers.calls import LiteLLMCaller

    first = read_message(inp)
    if not first or first[0] != "init":
        return
    config = LiteLLMTeacherConfig.model_validate_json(first[1])
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    lock = threading.Lock()

    def send(message: Any) -> None:
        with lock:
            write_message(out, message)

    try:
        caller = LiteLLMCaller(config)
    except Exception as exc:  # report instead of dying silently
        send(("result", -1, Failure("internal", f"{type(exc).__name__}: {exc}")))
        return
    send(("ready",))

    async def handle(call_id: int, messages: list[Message], timeout: float) -> None:
        send(("result", call_id, await caller.call(messages, timeout)))

    def read_loop() -> None:
        while True:
            message = read_message(inp)
            if message is None or message[0] != "call":
                break
            call_id, messages, timeout = message[1:4]
            loop.call_soon_threadsafe(loop.create_task, handle(call_id, messages, timeout))
        loop.call_soon_threadsafe(loop.stop)

    threading.Thread(target=read_loop, daemon=True).start()
    loop.run_forever()


def main() -> None:
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed by libraries goes to stderr, not into the protocol
    _serve(sys.stdin.buffer, protocol_out)
    sys.stderr.flush()
    # Every answer is already flushed to the parent; skip litellm's slow interpreter teardown.
    os._exit(0)


if __name__ == "__main__":
    main()
