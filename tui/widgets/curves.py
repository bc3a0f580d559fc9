"""Run detail, Training tab: loss and validation loss, learning rate and tokens/s as terminal plots."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from stillhouse.tui.state import MetricPoint, RunState

# (plot id, title, [(metric key, label)])
PLOTS = [
    ("loss-plot", "Loss", [("train/loss", "train"), ("eval/loss", "validation")]),
    ("lr-plot", "Learning rate", [("train/lr", "lr")]),
    ("tps-plot", "Tokens / s", [("train/tokens_per_s", "tok/s")]),
]


MAX_POINTS = 400  # a terminal plot is at most a few hundred cells wide
MARKED_POINTS = 20  # curves this short show each point: a line through 4 points hides that there are 4
COLORS = ("cyan", "orange", "green", "magenta")
POINT = "●"


def series(points: list[MetricPoint]) -> tuple[list[float], list[float]]:
    """x = step when the trainer gave one, else the point's index. Long runs are thinned to
    every k-th point (the last one always kept) so a redraw stays cheap."""
    indexed = list(enumerate(points))
    if len(indexed) > MAX_POINTS:
        stride = -(-len(indexed) // MAX_POINTS)
        indexed = indexed[::stride] + ([indexed[-1]] if (len(indexed) - 1) % stride else [])
    xs = [float(p.step) if p.step is not None else float(i) for i, p in indexed]
    return xs, [p.value for _, p in indexed]


def latest_line(state: RunState) -> str:
    parts = []
    for key, label in (("train/loss", "loss"), ("eval/loss", "val loss"), ("train/lr", "lr"), ("train/tokens_per_s", "tok/s")):
        points = state.metrics.get(key)
        if points:
            step = f" @{points[-1].step}" if points[-1].step is not None else ""
            parts.append(f"{label} {points[-1].value:.4g}{step}")
    return "   ".join(parts) if parts else "no training metrics yet"


class TrainingCurves(Vertical):
    def compose(self) -> ComposeResult:
        yield Static("no training metrics yet", id="curves-latest")
        yield PlotextPlot(id="loss-plot")
        with Horizontal(id="curves-small"):
            yield PlotextPlot(id="lr-plot")
            yield PlotextPlot(id="tps-plot")

    def show(self, state: RunState) -> None:
        self.query_one("#curves-latest", Static).update(latest_line(state))
        for plot_id, title, keys in PLOTS:
            widget = self.query_one(f"#{plot_id}", PlotextPlot)
            plt = widget.plt
            plt.clear_data()
            plt.clear_figure()
            plt.title(title)
            drawn = False
            for (key, label), color in zip(keys, COLORS, strict=False):
                points = list(state.metrics.get(key) or [])
                if points:
                    xs, ys = series(points)
                    plt.plot(xs, ys, label=label, marker="braille", color=color)
                    if len(xs) <= MARKED_POINTS:
                        plt.scatter(xs, ys, marker=POINT, color=color)
                    drawn = True
            if drawn:
                plt.xlabel("step")
            widget.refresh()
