"""The sweep's HTML report (``report.html`` in the sweep folder, or ``still sweep show ID --html
FILE``): the objective per trial, each parameter against the objective, Optuna's parameter
importances and the trials table. One self-contained page in the run report's style: styles and
SVG charts inline, nothing fetched."""

from __future__ import annotations

import json
import math
from html import escape
from typing import Any

from stillhouse.plugins.reports.html import STYLE
from stillhouse.plugins.reports.svg import bar_chart, scatter_chart
from stillhouse.plugins.sweep.spec import CategoricalParam, SweepSection


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, list) else str(value)


def _scored(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in result["trials"] if t.get("values")]


def objective_chart(result: dict[str, Any]) -> str:
    trials = _scored(result)
    best = (result.get("best") or {}).get("number")
    objective = result["objectives"][0]
    points = [(float(t["number"]), float(t["values"][0]), f"trial {t['number']}: {objective} {t['values'][0]:.4g}") for t in trials]
    ticks = [(float(t["number"]), str(t["number"])) for t in trials] if len(trials) <= 30 else []
    return scatter_chart(
        points,
        f"{objective} per trial",
        x_label="trial",
        y_label=f"{objective} ({result['directions'][0]})",
        x_ticks=ticks,
        highlight=[t["number"] == best for t in trials],
    )


def param_chart(result: dict[str, Any], key: str, param: Any) -> str:
    """One parameter against the objective: a log axis for log ranges, named positions for choices."""
    objective = result["objectives"][0]
    trials = [t for t in _scored(result) if key in t["params"]]
    ticks: list[tuple[float, str]] = []
    if isinstance(param, CategoricalParam):
        labels = [json.dumps(c) if isinstance(c, list) else str(c) for c in param.choices]
        ticks = [(float(i), label) for i, label in enumerate(labels)]

        def position(value: Any) -> float:
            text = json.dumps(value) if isinstance(value, list) else str(value)
            return float(labels.index(text)) if text in labels else -1.0
    else:

        def position(value: Any) -> float:
            return float(value)

    points = [
        (position(t["params"][key]), float(t["values"][0]), f"trial {t['number']}: {key} = {_fmt(t['params'][key])}, {objective} {t['values'][0]:.4g}")
        for t in trials
    ]
    log = bool(getattr(param, "log", False))  # float and int ranges; categories have no scale
    return scatter_chart(points, f"{key} vs {objective}", x_label=key, y_label=objective, log_x=log, x_ticks=ticks)


def importance_chart(importances: dict[str, float]) -> str:
    names = list(importances)
    return bar_chart(names, [("importance", [importances[n] for n in names])], "Parameter importances (Optuna, fANOVA)")


def _trials_table(result: dict[str, Any]) -> str:
    keys = sorted({k for t in result["trials"] for k in t["params"]})
    head = "".join(f"<th>{escape(h)}</th>" for h in ["trial", "state", " / ".join(result["objectives"]), *keys, "seconds", "run"])
    rows = []
    for t in result["trials"]:
        values = ", ".join(f"{v:.4g}" for v in t["values"]) if t.get("values") else "—"
        state = t["state"] + (f" (step {t['pruned_at_step']})" if t.get("pruned_at_step") is not None else "")
        cells = [str(t["number"]), state, values, *(_fmt(t["params"][k]) if k in t["params"] else "—" for k in keys),
                 f"{t['seconds']:.1f}" if t.get("seconds") is not None else "—", t.get("run_id") or "—"]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_sweep_html(result: dict[str, Any], section: SweepSection) -> str:
    """The page for ``summarise``'s result; ``section`` tells log ranges and categories apart."""
    objectives = " / ".join(f"{o} ({d})" for o, d in zip(result["objectives"], result["directions"], strict=True))
    trials = result["trials"]
    counts = {s: sum(t["state"] == s for t in trials) for s in ("complete", "pruned", "fail", "running")}
    best = result.get("best")
    sections = [
        f"<h1>Sweep {escape(result['sweep_id'])}</h1>",
        f"<p>Objective: {escape(objectives)}. {len(trials)} trials: "
        + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        + ".</p>",
    ]
    if best:
        values = ", ".join(f"{v:.4g}" for v in best["values"] or [])
        params = ", ".join(f"{k} = {_fmt(v)}" for k, v in best["params"].items())
        sections.append(f"<p><b>Best: trial {best['number']}</b>, {escape(result['objectives'][0])} {escape(values)} "
                        f"(run {escape(best.get('run_id') or '—')}): {escape(params)}</p>")  # fmt: skip
    if result.get("pareto_front"):
        items = "".join(f"<li>trial {r['number']}: {escape(', '.join(f'{v:.4g}' for v in r['values']))}</li>" for r in result["pareto_front"])
        sections.append(f"<h2>Pareto front</h2><ul>{items}</ul>")
    if _scored(result):
        sections += ["<h2>Objective per trial</h2>", f"<figure>{objective_chart(result)}</figure>", "<h2>Parameters vs objective</h2>"]
        sections += [f"<figure>{param_chart(result, key, param)}</figure>" for key, param in section.space.items()]
    else:
        sections.append('<p class="missing">No complete trial yet: nothing to plot.</p>')
    sections.append("<h2>Parameter importances</h2>")
    importances = result.get("importances")
    if importances and not all(math.isclose(v, 0.0) for v in importances.values()):
        sections.append(f"<figure>{importance_chart(importances)}</figure>")
    if result.get("importances_note"):
        sections.append(f'<p class="missing">{escape(result["importances_note"])}</p>')
    sections += ["<h2>Trials</h2>", _trials_table(result)]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Stillhouse sweep {escape(result['sweep_id'])}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(sections)}</body></html>\n"
    )
