"""`still export ... --push-to-hub OWNER/NAME` against a local fake of the Hub's HTTP API (no
network): huggingface_hub's create_repo and upload_folder reach it through HF_ENDPOINT, and the
files arrive."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.plugins.reports.conftest import RUN_ID

TOKEN = "hf_fake_token_for_the_test_only"


class FakeHub(ThreadingHTTPServer):
    """The endpoints huggingface_hub 2.x calls for create_repo + upload_folder with small files:
    POST /api/repos/create, /api/validate-yaml, /api/models/R/preupload/REV (every file "regular",
    so its content travels base64 inside the commit) and /api/models/R/commit/REV (NDJSON)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.repos: dict[str, dict[str, bytes]] = {}
        self.tokens: list[str] = []
        self.commit_messages: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: FakeHub

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.tokens.append(self.headers.get("Authorization", ""))
        path = self.path.split("?")[0]
        parts = path.strip("/").split("/")
        if path == "/api/repos/create":
            request = json.loads(body)
            repo = f"{request['organization']}/{request['name']}"
            self.server.repos.setdefault(repo, {})
            return self.reply(200, {"url": f"{self.server.url}/{repo}", "name": repo})
        if path == "/api/validate-yaml":
            return self.reply(200, {"errors": [], "warnings": []})
        if parts[:2] == ["api", "models"] and parts[4] == "preupload":
            files = json.loads(body)["files"]
            return self.reply(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
        if parts[:2] == ["api", "models"] and parts[4] == "commit":
            repo = f"{parts[2]}/{parts[3]}"
            if repo not in self.server.repos:
                return self.reply(404, {"error": "Repository not found"})
            for line in body.splitlines():
                item = json.loads(line)
                if item["key"] == "header":
                    self.server.commit_messages.append(item["value"]["summary"])
                elif item["key"] == "file":
                    value = item["value"]
                    self.server.repos[repo][value["path"]] = base64.b64decode(value["content"])
            return self.reply(200, {"commitUrl": f"{self.server.url}/{repo}/commit/0123abcd", "commitOid": "0123abcd"})
        return self.reply(404, {"error": f"not faked: POST {path}"})


@pytest.fixture
def hub(monkeypatch) -> Iterator[FakeHub]:
    from huggingface_hub import constants

    server = FakeHub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the test env is offline; this hub is local
    yield server
    server.shutdown()
    server.server_close()


def test_push_to_hub_uploads_the_export_to_the_repo(still, student_run, exports, hub, monkeypatch):
    monkeypatch.setenv("MY_HUB_TOKEN", TOKEN)
    dest = exports / "gguf"
    result = still("export", RUN_ID, str(dest), "--format", "gguf", "--quantize", "q8_0", "--push-to-hub", "me/tiny-student", "--token-env", "MY_HUB_TOKEN")
    assert result.exit_code == 0, result.output
    assert f"{hub.url}/me/tiny-student/commit/0123abcd" in result.output
    uploaded = hub.repos["me/tiny-student"]
    local = {p.name: p.read_bytes() for p in dest.iterdir()}
    assert uploaded == local  # every file, byte for byte: the .gguf and the model card
    assert any(name.endswith(".gguf") for name in uploaded) and "README.md" in uploaded
    assert set(hub.tokens) == {f"Bearer {TOKEN}"}
    assert RUN_ID in hub.commit_messages[0]


def test_push_to_hub_without_a_token_exits_2_before_exporting(still, student_run, exports, hub, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    result = still("export", RUN_ID, str(exports / "hf"), "--push-to-hub", "me/tiny-student")
    assert result.exit_code == 2
    assert "needs a Hugging Face token in $HF_TOKEN" in result.output and "--token-env" in result.output
    assert not list(exports.iterdir()) and not hub.repos  # nothing exported, nothing sent
    bad = still("export", RUN_ID, str(exports / "hf"), "--push-to-hub", "no owner here")
    assert bad.exit_code == 2 and "is not a Hub repo id" in bad.output


def test_a_hub_that_cannot_be_reached_is_a_clear_error_and_the_export_is_kept(still, student_run, exports, hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    dest = exports / "gguf"
    result = still("export", RUN_ID, str(dest), "--format", "gguf", "--push-to-hub", "me/tiny-student")
    assert result.exit_code == 2
    assert "pushing" in result.output and "failed" in result.output and "hf upload me/tiny-student" in result.output
    assert list(dest.glob("*.gguf")) and TOKEN not in result.output
