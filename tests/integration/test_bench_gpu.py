"""bench/gpu.py --dry runs every code path of the GPU benchmark on CPU with tiny models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_bench_dry_run_covers_every_measurement(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu.py"), "--dry", "--out", str(out)],
        cwd=ROOT, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"}, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    payload = json.loads(out.read_text())
    results = payload["results"]
    assert payload["dry"] is True and set(results) >= {"train", "kd", "topk", "generate", "liger"}
    assert results["train"]["tiny"]["tokens_per_s"] > 0 and "mfu" in results["train"]["tiny"]
    assert results["kd"]["store"]["tokens_per_s"] > 0 and results["kd"]["live"]["tokens_per_s"] > 0
    assert results["topk"]["positions"] > 0 and results["generate"]["new_tokens"] == 8
