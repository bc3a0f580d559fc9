"""Engine-level stand-in for the kernel's generate stage, run as a process by the kill -9 test.

Like the kernel it skips samples already answered in the outputs JSONL, and appends every result
as it arrives (flush + fsync). Usage: ``python gen_driver.py API_BASE CACHE_DIR OUT_JSONL N CONCURRENCY``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from stillhouse.kernel.interfaces import TeacherRequest, TeacherResult
from stillhouse.plugins.teachers.litellm_teacher import LiteLLMTeacher


def latest(path: Path) -> dict[str, dict]:
    """The last record per sample id; a torn last line (killed mid-write) is ignored."""
    records: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            records[record["sample_id"]] = record
    return records


def requests_for(n: int) -> list[TeacherRequest]:
    return [TeacherRequest(f"s{i}", [{"role": "user", "content": f"question {i}"}]) for i in range(n)]


def main() -> None:
    api_base, cache_dir, out_path, n, concurrency = sys.argv[1:6]
    out = Path(out_path)
    done = {sid for sid, record in latest(out).items() if record["error"] is None}
    pending = [r for r in requests_for(int(n)) if r.sample_id not in done]
    teacher = LiteLLMTeacher(
        LiteLLMTeacher.Config(model="openai/fake-teacher", api_base=api_base, concurrency=int(concurrency))
    )
    if out.exists() and out.stat().st_size and not out.read_bytes().endswith(b"\n"):
        with out.open("a") as sink:  # a line torn by the kill: end it, so the next record starts clean
            sink.write("\n")
    with out.open("a") as sink:

        def on_result(result: TeacherResult) -> None:
            sink.write(json.dumps(asdict(result)) + "\n")
            sink.flush()
            os.fsync(sink.fileno())

        try:
            teacher.generate(pending, on_result, cache_dir=Path(cache_dir))
        finally:
            teacher.close()


if __name__ == "__main__":
    main()
