"""Inline SVG charts for the HTML report: grouped bars and a line. Plain strings, no dependencies,
so the report stays one self-contained file."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

COLORS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756")
WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 16, 56


def _svg(body: list[str], title: str) -> str:
    return (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>' + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, *, anchor: str = "middle", size: int = 11, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}"{klass}>{escape(text)}</text>'


def _axes(y_max: float, y_min: float = 0.0) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    body = [
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#888"/>',
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" stroke="#888"/>',
    ]
    for i in range(5):
        value = y_min + (y_max - y_min) * i / 4
        y = HEIGHT - BOTTOM - plot_h * i / 4
        body.append(f'<line x1="{LEFT - 3}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#eee"/>')
        body.append(_text(LEFT - 6, y + 4, f"{value:.3g}", anchor="end", size=10))
    return body


def bar_chart(groups: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], title: str) -> str:
    """Bars per group (a metric) and series (a model); a missing value is drawn as "n/a", not 0."""
    values = [v for _, vals in series for v in vals if v is not None]
    y_max = max([1.0, *values])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    group_w = plot_w / max(1, len(groups))
    bar_w = group_w * 0.8 / max(1, len(series))
    body = _axes(y_max)
    for g, group in enumerate(groups):
        x0 = LEFT + g * group_w + group_w * 0.1
        for s, (label, vals) in enumerate(series):
            value = vals[g]
            x = x0 + s * bar_w
            if value is None:
                body.append(_text(x + bar_w / 2, HEIGHT - BOTTOM - 4, "n/a", size=10, cls="missing"))
                continue
            h = plot_h * value / y_max
            y = HEIGHT - BOTTOM - h
            color = COLORS[s % len(COLORS)]
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w * 0.9:.1f}" height="{h:.1f}" fill="{color}">'
                f"<title>{escape(label)} {escape(group)}: {value:.4g}</title></rect>"
            )
            body.append(_text(x + bar_w * 0.45, y - 3, f"{value:.3f}", size=10))
        body.append(_text(LEFT + g * group_w + group_w / 2, HEIGHT - BOTTOM + 16, group))
    x = float(LEFT)
    for s, (label, _) in enumerate(series):
        body.append(f'<rect x="{x:.1f}" y="{HEIGHT - 22}" width="10" height="10" fill="{COLORS[s % len(COLORS)]}"/>')
        body.append(_text(x + 14, HEIGHT - 13, label, anchor="start"))
        x += 34 + 6.5 * len(label)  # ~6.5 px per character at 11 px: the next entry starts after this label
    return _svg(body, title)


def line_chart(points: Sequence[tuple[float, float]], title: str, x_label: str = "step") -> str:
    """A polyline of (x, y) points with the y range of the data."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x_min, x_max = min(xs), max(xs)
    y_min, y_max = min(ys), max(ys)
    if y_max == y_min:
        y_min, y_max = y_min - 0.5, y_max + 0.5
    if x_max == x_min:
        x_min, x_max = x_min - 1, x_max + 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def scale(x: float, y: float) -> str:
        px = LEFT + plot_w * (x - x_min) / (x_max - x_min)
        py = HEIGHT - BOTTOM - plot_h * (y - y_min) / (y_max - y_min)
        return f"{px:.1f},{py:.1f}"

    body = _axes(y_max, y_min)
    body.append(
        f'<polyline fill="none" stroke="{COLORS[0]}" stroke-width="2" points="{" ".join(scale(x, y) for x, y in points)}"/>'
    )
    body.append(_text(LEFT, HEIGHT - BOTTOM + 16, f"{x_min:g}", anchor="start", size=10))
    body.append(_text(WIDTH - RIGHT, HEIGHT - BOTTOM + 16, f"{x_max:g}", anchor="end", size=10))
    body.append(_text(LEFT + plot_w / 2, HEIGHT - BOTTOM + 30, x_label))
    return _svg(body, title)


def scatter_chart(
    points: Sequence[tuple[float, float, str]],
    title: str,
    *,
    x_label: str,
    y_label: str = "",
    log_x: bool = False,
    x_ticks: Sequence[tuple[float, str]] = (),
    highlight: Sequence[bool] = (),
) -> str:
    """Dots at (x, y), each with a tooltip (its third element); ``log_x`` spaces x by its logarithm
    (learning rates), ``x_ticks`` names positions (categories), ``highlight`` rings chosen dots."""
    import math

    def fx(x: float) -> float:
        return math.log10(x) if log_x and x > 0 else x

    xs, ys = [fx(p[0]) for p in points], [p[1] for p in points]
    x_min, x_max = (min(xs), max(xs)) if xs else (0.0, 1.0)
    y_min, y_max = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if y_max == y_min:
        y_min, y_max = y_min - 0.5, y_max + 0.5
    pad = (x_max - x_min) * 0.05 or 0.5
    x_min, x_max = x_min - pad, x_max + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + plot_w * (x - x_min) / (x_max - x_min)

    def py(y: float) -> float:
        return HEIGHT - BOTTOM - plot_h * (y - y_min) / (y_max - y_min)

    body = _axes(y_max, y_min)
    for i, ((_, y, tip), x) in enumerate(zip(points, xs, strict=True)):
        ring = ' stroke="#e45756" stroke-width="2.5"' if i < len(highlight) and highlight[i] else ""
        body.append(
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="4.5" fill="{COLORS[0]}" fill-opacity="0.8"{ring} '
            f'data-x="{points[i][0]:.6g}" data-y="{y:.6g}"><title>{escape(tip)}</title></circle>'
        )
    ticks = list(x_ticks) or [(10**v if log_x else v, f"{10**v if log_x else v:.3g}") for v in (xs and (min(xs), max(xs)) or ())]
    for value, label in ticks:
        body.append(_text(px(fx(value)), HEIGHT - BOTTOM + 16, label, size=10))
    body.append(_text(LEFT + plot_w / 2, HEIGHT - BOTTOM + 32, x_label + (" (log scale)" if log_x else "")))
    if y_label:
        body.append(_text(LEFT, TOP - 4, y_label, anchor="start", size=10))
    return _svg(body, title)
