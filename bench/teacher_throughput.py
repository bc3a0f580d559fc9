"""Teacher throughput: our engine against a bare litellm loop, the naive loop, and the ideal.

    python bench/teacher_throughput.py            # concurrency 1, 8, 32, 64 (~2-3 minutes here)
    python bench/teacher_throughput.py --quick    # concurrency 1, 8, 32, fewer requests

A local OpenAI-compatible server (``stillhouse.testing.fake_openai``, its own process)
answers every request after a fixed 50 ms. At each concurrency it measures requests/s of

- ``engine``: ``LiteLLMTeacher.generate`` (cache writes included, fresh cache), one process;
- ``engine_workers``: the same with ``workers = N`` (calls spread over N processes);
- ``bare``: ``litellm.acompletion`` under an ``asyncio.Semaphore`` (no retries, cache or accounting);
- ``naive``: one ``litellm.completion`` after another, as the reference workflow does (measured once);
- ``ideal``: ``concurrency / 0.05 s``.

It also times a fully cached rerun against its cold run, and litellm's CPU cost per call (process
CPU time / calls in the bare loop), which caps one process at about 1000 / cpu_ms calls/s. Ratios
are between numbers measured in this process, one after another (this machine's speed drifts).
Writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from stillhouse.kernel.interfaces import TeacherRequest  # noqa: E402
from stillhouse.plugins.teachers.litellm_teacher import LiteLLMTeacher  # noqa: E402
from stillhouse.plugins.teachers.pricing import import_litellm  # noqa: E402

LATENCY_S = 0.05
MODEL = "openai/fake-teacher"


def start_server() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "stillhouse.testing.fake_openai", "--latency", str(LATENCY_S)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    port = int(process.stdout.readline().split()[1])
    return process, f"http://127.0.0.1:{port}/v1"


def requests(n: int, tag: str) -> list[TeacherRequest]:
    return [TeacherRequest(f"{tag}-{i}", [{"role": "user", "content": f"{tag} question {i}"}]) for i in range(n)]


def messages(n: int, tag: str) -> list[list[dict[str, str]]]:
    return [r.messages for r in requests(n, tag)]


def time_engine(teacher: LiteLLMTeacher, reqs: list[TeacherRequest], cache_dir: Path) -> tuple[float, int]:
    out: list[Any] = []
    start = time.perf_counter()
    teacher.generate(reqs, out.append, cache_dir=cache_dir)
    elapsed = time.perf_counter() - start
    failed = sum(1 for r in out if not r.ok)
    return elapsed, failed


def time_bare(url: str, prompts: list[list[dict[str, str]]], concurrency: int) -> tuple[float, float]:
    """(seconds, CPU ms per call) of litellm.acompletion under a semaphore."""
    litellm: Any = import_litellm()

    async def run() -> None:
        gate = asyncio.Semaphore(concurrency)

        async def one(msgs: list[dict[str, str]]) -> None:
            async with gate:
                await litellm.acompletion(
                    model=MODEL, api_base=url, api_key="x", messages=msgs, max_retries=0, timeout=30
                )

        await asyncio.gather(*(one(m) for m in prompts))

    cpu, start = time.process_time(), time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - start, (time.process_time() - cpu) / len(prompts) * 1000


def time_naive(url: str, prompts: list[list[dict[str, str]]]) -> float:
    litellm: Any = import_litellm()
    start = time.perf_counter()
    for msgs in prompts:
        litellm.completion(model=MODEL, api_base=url, api_key="x", messages=msgs, max_retries=0, timeout=30)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="concurrency 1, 8, 32 and fewer requests")
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes for the engine_workers column (0: skip)"
    )
    parser.add_argument("--seconds", type=float, default=2.5, help="target seconds of work per measurement")
    parser.add_argument("--out", type=Path, default=Path("bench/results/teacher_throughput.json"))
    args = parser.parse_args()
    levels = (1, 8, 32) if args.quick else (1, 8, 32, 64)
    seconds = args.seconds / 2 if args.quick else args.seconds

    server, url = start_server()
    tmp = Path(tempfile.mkdtemp(prefix="stillhouse-bench-"))
    engines: dict[str, LiteLLMTeacher] = {}
    rows: list[dict[str, Any]] = []
    try:
        # Warm up: imports, connection pools, worker processes.
        time_bare(url, messages(20, "warm-bare"), 8)
        naive_n = max(10, int(seconds / LATENCY_S / 2))
        naive_rps = naive_n / time_naive(url, messages(naive_n, "naive"))
        for level in levels:
            ideal = level / LATENCY_S
            # enough requests for ~`seconds` at 40% of ideal (at least 4 rounds of `level`)
            n = max(4 * level, int(seconds * ideal * 0.4))
            row: dict[str, Any] = {"concurrency": level, "requests": n, "ideal_rps": ideal, "naive_rps": naive_rps}
            bare_s, cpu_ms = time_bare(url, messages(n, f"bare{level}"), level)
            row["bare_rps"], row["litellm_cpu_ms_per_call"] = n / bare_s, cpu_ms
            for name, workers in (("engine", 1), ("engine_workers", args.workers)):
                if workers < 1 or (name == "engine_workers" and workers == 1):
                    continue
                teacher = LiteLLMTeacher(
                    LiteLLMTeacher.Config(model=MODEL, api_base=url, concurrency=level, workers=workers)
                )
                time_engine(teacher, requests(max(8, level), f"warm-{name}{level}"), tmp / f"warm-{name}{level}")
                engines[f"{name}{level}"] = teacher
                elapsed, failed = time_engine(teacher, requests(n, f"{name}{level}"), tmp / f"{name}{level}")
                row[f"{name}_rps"], row[f"{name}_failed"] = n / elapsed, failed
                if level == 32 and name == "engine":
                    cached, _ = time_engine(teacher, requests(n, f"{name}{level}"), tmp / f"{name}{level}")
                    row["cached_rerun_s"], row["cold_run_s"] = cached, elapsed
                teacher.close()
            rows.append(row)
            print(f"  concurrency {level}: done", file=sys.stderr, flush=True)
    finally:
        for teacher in engines.values():
            teacher.close()
        server.terminate()
        server.wait(10)

    at32 = next(r for r in rows if r["concurrency"] == 32)
    summary = {
        "engine_vs_bare_at_32": at32["engine_rps"] / at32["bare_rps"],
        "engine_vs_naive_at_32": at32["engine_rps"] / at32["naive_rps"],
        "best_engine_vs_naive_at_32": max(at32["engine_rps"], at32.get("engine_workers_rps", 0.0)) / at32["naive_rps"],
        "cached_rerun_over_cold": at32["cached_rerun_s"] / at32["cold_run_s"],
        "litellm_cpu_ms_per_call": sum(r["litellm_cpu_ms_per_call"] for r in rows) / len(rows),
        "targets": {
            "engine_vs_bare_at_32": ">= 0.9",
            "engine_vs_naive_at_32": ">= 15",
            "cached_rerun_over_cold": "<= 0.05",
        },
    }
    print_table(rows, summary, args.workers)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "teacher_throughput",
        "server_latency_s": LATENCY_S,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "rows": rows,
        "summary": summary,
    }
    args.out.write_text(json.dumps(payload, indent=2))
    print(json.dumps(payload["summary"], indent=2))
    print(f"wrote {args.out}")


def print_table(rows: list[dict[str, Any]], summary: dict[str, Any], workers: int) -> None:
    has_workers = any("engine_workers_rps" in r for r in rows)
    head = f"{'conc':>4} {'n':>5} {'ideal':>7} {'naive':>6} {'bare':>7} {'engine':>7}"
    head += f" {f'eng x{workers}':>8}" if has_workers else ""
    head += f" {'eng/bare':>8} {'eng/naive':>9} {'eng/ideal':>9} {'cpu ms':>6}"
    print("requests/s against a server answering after 50 ms")
    print(head)
    for r in rows:
        line = f"{r['concurrency']:>4} {r['requests']:>5} {r['ideal_rps']:>7.0f} {r['naive_rps']:>6.1f} {r['bare_rps']:>7.1f} {r['engine_rps']:>7.1f}"
        line += f" {r.get('engine_workers_rps', 0):>8.1f}" if has_workers else ""
        line += (
            f" {r['engine_rps'] / r['bare_rps']:>8.2f} {r['engine_rps'] / r['naive_rps']:>9.1f}"
            f" {r['engine_rps'] / r['ideal_rps']:>9.2f} {r['litellm_cpu_ms_per_call']:>6.2f}"
        )
        print(line)
    print(
        f"cached rerun / cold run at concurrency 32: {summary['cached_rerun_over_cold']:.3f} "
        f"(target <= 0.05); litellm CPU per call: {summary['litellm_cpu_ms_per_call']:.2f} ms "
        f"(one process caps near {1000 / summary['litellm_cpu_ms_per_call']:.0f} calls/s)"
    )


if __name__ == "__main__":
    main()
