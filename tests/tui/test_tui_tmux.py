"""Smoke test: `still tui` in a real terminal (tmux), driven by keys, read back with capture-pane."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stillhouse.tui.launch import still_command


def ensure_tmux() -> str:
    """tmux, installed with apt-get when missing and possible; skip only when it cannot be had."""
    found = shutil.which("tmux")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "tmux"], capture_output=True, timeout=300, check=False)
        found = shutil.which("tmux")
        if found:
            return found
    pytest.skip("tmux is not installed and cannot be installed here (apt-get install tmux)")


class Terminal:
    def __init__(self, tmux: str, socket: str, session: str) -> None:
        self.tmux, self.socket, self.session = tmux, socket, session

    def run(self, *args: str) -> str:
        return subprocess.run([self.tmux, "-L", self.socket, *args], capture_output=True, text=True, timeout=30).stdout

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.run("send-keys", "-t", self.session, key)
            time.sleep(0.15)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session)

    def wait(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; the screen shows:\n{screen}")
            time.sleep(0.2)

    def alive(self) -> bool:
        return subprocess.run([self.tmux, "-L", self.socket, "has-session", "-t", self.session], capture_output=True).returncode == 0


@pytest.fixture
def terminal(fixture_home: Path) -> Iterator[Terminal]:
    tmux = ensure_tmux()
    socket = f"still-tui-test-{os.getpid()}"
    command = shlex.join(["env", f"STILLHOUSE_HOME={fixture_home}", "TERM=xterm-256color", *still_command(), "tui", "--poll", "0.5"])
    subprocess.run([tmux, "-L", socket, "new-session", "-d", "-s", "tui", "-x", "100", "-y", "30", command], check=True, timeout=30)
    term = Terminal(tmux, socket, "tui")
    try:
        yield term
    finally:
        subprocess.run([tmux, "-L", socket, "kill-server"], capture_output=True, timeout=30)


def test_still_tui_in_a_real_terminal(terminal: Terminal) -> None:
    screen = terminal.wait("10 of 10 runs")
    assert "eval-smol" in screen and "qa-live" in screen and "running" in screen
    terminal.keys("/", "n", "l", "i", "-", "4", "Enter")
    terminal.wait("1 of 10 runs")
    terminal.keys("Enter")
    screen = terminal.wait("Stages")
    assert "nli-4o" in screen and "✓ report" in screen
    terminal.keys("4")  # the Evaluation tab
    terminal.wait("vs teacher")
    terminal.keys("Escape", "4")  # back to Runs, then the SQL screen
    terminal.wait("ctrl+r runs")
    terminal.keys("C-r")
    terminal.wait("rows ·")
    terminal.keys("C-q")
    deadline = time.monotonic() + 20
    while terminal.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not terminal.alive(), "ctrl+q did not quit"
