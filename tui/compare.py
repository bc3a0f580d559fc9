"""Comparing runs: which config keys differ, and their metrics side by side. Pure Python."""

from __future__ import annotations

import json
from typing import Any

from stillhouse.tui.state import RunState

MISSING = object()


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1}}`` -> ``{"train.lr": 1}``; lists stay whole values."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, dotted))
        else:
            out[dotted] = value
    return out


def config_diff(configs: list[dict[str, Any]], *, all_keys: bool = False) -> list[tuple[str, list[str]]]:
    """Keys whose values are not the same in every config (or every key with ``all_keys``),
    with each config's value rendered as text ("—" where a config lacks the key)."""
    flat = [flatten(c) for c in configs]
    keys = sorted({k for f in flat for k in f})
    rows = []
    for key in keys:
        values = [f.get(key, MISSING) for f in flat]
        if not all_keys and all(_same(values[0], v) for v in values[1:]):
            continue
        rows.append((key, [_render(v) for v in values]))
    return rows


def metrics_side_by_side(states: list[RunState]) -> list[tuple[str, list[float | None]]]:
    """Rows ``role/metric`` (evaluation) and training's last values, one column per run."""
    keys: list[str] = []
    for state in states:
        for role, metrics in state.evals.items():
            for metric in metrics:
                key = f"{role}/{metric}"
                if key not in keys:
                    keys.append(key)
    keys.sort(key=_metric_order)
    rows: list[tuple[str, list[float | None]]] = [
        (key, [s.evals.get(key.split("/", 1)[0], {}).get(key.split("/", 1)[1]) for s in states]) for key in keys
    ]
    rows.append(("retention", [s.retention for s in states]))
    for key in ("train/loss", "eval/loss"):
        if any(key in s.metrics for s in states):
            rows.append((f"final {key}", [s.latest(key) for s in states]))
    rows.append(("cost_usd", [s.cost_usd if s.teacher_calls else None for s in states]))
    return rows


def _metric_order(key: str) -> tuple[int, str]:
    role = key.split("/", 1)[0]
    order = {"teacher": 0, "baseline": 1, "student": 2}
    return (order.get(role, 3), key)


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str) if a is not MISSING and b is not MISSING else a is b


def _render(value: Any) -> str:
    if value is MISSING:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)
