"""The sweep's HTML report: `still sweep show ID --html FILE` on a study told by hand (no training).
The page is parsed, and the plots' data (every complete trial's objective, each parameter's
values, the importances) is read back from the SVG elements."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

from stillhouse.kernel.plugins import get_host
from stillhouse.plugins.sweep.spec import load_sweep
from stillhouse.plugins.sweep.study import SweepFolder, open_study
from stillhouse.plugins.sweep.trial import suggest

from .helpers import write_pipeline, write_sweep


class Page(HTMLParser):
    """The page's figures: each SVG's title, its dots' (data-x, data-y, tooltip) and bars' tooltips."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: list[dict] = []
        self.stack: list[str] = []
        self.dot: dict | None = None
        self.in_title = False
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.stack.append(tag)
        a = dict(attrs)
        if tag == "svg":
            self.figures.append({"title": a.get("aria-label"), "dots": [], "bars": []})
        elif tag == "circle":
            self.dot = {"x": float(a["data-x"]), "y": float(a["data-y"])}
        elif tag == "rect" and "height" in a and a.get("width") != "10":
            self.dot = {"bar": True}
        elif tag == "title":
            self.in_title = True

    def handle_endtag(self, tag: str) -> None:
        if self.stack:
            self.stack.pop()
        if tag == "title":
            self.in_title = False
        if tag in ("circle", "rect") and self.dot is not None:
            self.figures[-1]["bars" if self.dot.get("bar") else "dots"].append(self.dot)
            self.dot = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.in_title and self.dot is not None:
            self.dot["tip"] = data


def test_show_writes_an_html_report_with_the_plots_data(tmp_path: Path, run_still, stillhouse_home: Path) -> None:
    write_pipeline(tmp_path, "http://127.0.0.1:9/v1", Path("unused-student"))
    path = write_sweep(tmp_path, body='pruner = "none"\n')
    sweep = load_sweep(path, get_host())
    folder = SweepFolder.create("html", path, sweep.text, stillhouse_home)
    study = open_study(folder, sweep.directions, sampler="random", seed=5)
    told = {}
    for value in (0.25, 0.75, 0.5, 0.6):
        trial = study.ask()
        told[trial.number] = (suggest(trial, sweep), value)
        trial.set_user_attr("run_id", f"run-{trial.number}")
        study.tell(trial, [value])
    pruned = study.ask()
    suggest(pruned, sweep)
    pruned.report(0.1, 3)
    study.tell(pruned, state=__import__("optuna").trial.TrialState.PRUNED)

    out = tmp_path / "out" / "sweep.html"
    out.parent.mkdir()
    result = run_still("sweep", "show", folder.id, "--html", str(out), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["report_html"] == [str(folder.dir / "report.html"), str(out)]
    html = out.read_text()
    assert html == (folder.dir / "report.html").read_text()
    assert "<script" not in html and "http" not in html.replace("http://www.w3.org", "")  # nothing fetched

    page = Page()
    page.feed(html)
    titles = [f["title"] for f in page.figures]
    assert titles == [
        "accuracy per trial",
        "train.learning_rate vs accuracy",
        "train.lr_scheduler vs accuracy",
        "Parameter importances (Optuna, fANOVA)",
    ]
    per_trial, lr, scheduler, importances = page.figures
    # the pruned trial has no objective: four dots, one per complete trial
    assert sorted((d["x"], d["y"]) for d in per_trial["dots"]) == [(float(n), v) for n, (_, v) in sorted(told.items())]
    assert sorted((round(d["x"], 6), d["y"]) for d in lr["dots"]) == sorted(
        (round(float(f"{p['train.learning_rate']:.6g}"), 6), v) for p, v in told.values()
    )
    choices = ["linear", "constant"]
    assert sorted((d["x"], d["y"]) for d in scheduler["dots"]) == sorted(
        (float(choices.index(p["train.lr_scheduler"])), v) for p, v in told.values()
    )
    assert any("trial 1: accuracy 0.75" == d["tip"] for d in per_trial["dots"])
    assert len(importances["bars"]) == 2 and all("importance" in b["tip"] for b in importances["bars"])
    text = "".join(page.text)
    assert "Best: trial 1" in text and "1 pruned" in text and "step 3" in text
