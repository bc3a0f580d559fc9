"""Two teachers as a third party would write them against the one-call interface: each implements
one call, and the kernel's CallTeacher adds the cache, retries, limits, budget and accounting.

- ``chat-completions``: an OpenAI-compatible ``/chat/completions`` endpoint called with httpx
  (``acomplete``, on the engine's event loop). Its two classes are the scaffolded teacher
  plugin's code (``still plugin new NAME --kind teacher``), names filled in.
- ``scripted``: answers with plain Python in threads (``complete``), and misbehaves on request:
  ``[[flaky:N]]`` in a prompt fails its first N attempts with a dropped connection, ``[[broken]]``
  always raises a ValueError.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

from pydantic import Field

from stillhouse.kernel import hookimpl
from stillhouse.kernel.errors import ConfigError, Location
from stillhouse.kernel.interfaces import Completion
from stillhouse.kernel.teaching import Call, CallTeacher, CallTeacherConfig, HttpTeacherConfig, Reply

if TYPE_CHECKING:
    import httpx


class ChatCompletionsConfig(HttpTeacherConfig):
    """``[teacher]`` with ``backend = "chat-completions"``."""

    backend: str = "chat-completions"
    path: str = Field("/chat/completions", description="Path of the chat completions endpoint under api_base.")


class ChatCompletionsTeacher(CallTeacher):
    name = "chat-completions"
    description = "Any OpenAI-compatible chat completions endpoint, called over HTTP."
    Config = ChatCompletionsConfig

    config: ChatCompletionsConfig
    client: httpx.AsyncClient  # opened by start()

    def check(self) -> None:
        if not self.config.api_base:
            raise ConfigError(
                "this teacher needs the endpoint's URL",
                where=Location(field="teacher.api_base"),
                hint='set teacher.api_base = "http://host:port/v1"',
            )
        if self.config.api_key_env and not os.environ.get(self.config.api_key_env):
            raise ConfigError(
                f"the environment variable {self.config.api_key_env} (teacher.api_key_env) is not set",
                where=Location(field="teacher.api_key_env"),
            )
        super().check()  # a budget needs a price

    async def start(self, calls: int) -> None:
        """Open one HTTP client for the teacher's lifetime, on the engine's event loop."""
        import httpx  # here, not at the top: `still --help` imports every plugin

        headers = {}
        if self.config.api_key_env:
            headers["Authorization"] = f"Bearer {os.environ[self.config.api_key_env]}"
        limits = httpx.Limits(max_connections=self.config.concurrency)
        self.client = httpx.AsyncClient(base_url=self.config.api_base or "", headers=headers, limits=limits)

    async def stop(self) -> None:
        await self.client.aclose()

    async def acomplete(self, call: Call) -> Reply:
        body: dict[str, Any] = {"model": self.config.model, "messages": call.messages}
        body.update((k, v) for k, v in self.config.sampling_params().items() if v is not None)
        response = await self.client.post(self.config.path, json=body, timeout=call.timeout)
        response.raise_for_status()  # 429 and 5xx are retried, other statuses recorded, 401 stops the run
        data = response.json()  # a body that is not JSON is retried too
        usage = data.get("usage") or {}
        return Reply(
            completions=[
                Completion(choice["message"].get("content") or "", choice.get("finish_reason"))
                for choice in data["choices"]
            ],
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
        )


class ScriptedTeacher(CallTeacher):
    name = "scripted"
    description = "Answers 'Echo: <prompt>' in Python; fails on request ([[flaky:N]], [[broken]])."

    def __init__(self, config: CallTeacherConfig | None = None) -> None:
        super().__init__(config)
        self.attempts: Counter[str] = Counter()  # per prompt: what the teacher was asked, failures included
        self._lock = threading.Lock()

    def complete(self, call: Call) -> Reply:
        prompt = call.messages[-1]["content"]
        with self._lock:
            self.attempts[prompt] += 1
            attempt = self.attempts[prompt]
        if "[[broken]]" in prompt:
            raise ValueError("this prompt always breaks the teacher")
        if "[[flaky:" in prompt and attempt <= int(prompt.split("[[flaky:")[1].split("]]")[0]):
            raise ConnectionResetError(f"connection dropped on attempt {attempt}")
        text = f"Echo: {prompt}"
        return Reply([Completion(text, "stop")] * self.config.samples, len(prompt.split()), len(text.split()))


@hookimpl
def register_teachers(register: Any) -> None:
    register(ChatCompletionsTeacher)
    register(ScriptedTeacher)
