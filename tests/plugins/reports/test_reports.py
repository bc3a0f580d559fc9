"""The Markdown and HTML reports, the model card and the terminal table, written as real files."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import yaml

from stillhouse.kernel.interfaces import ReportInput
from stillhouse.plugins.reports import comparison_table, load_report_input, write_model_card
from stillhouse.plugins.reports.html import HtmlReporter
from stillhouse.plugins.reports.markdown import MarkdownReporter
from tests.plugins.reports.conftest import CONFIG, CURVE, RESULTS, RUN_ID, write_run

# The hand-computed ratio row (see conftest.RESULTS).
RATIOS = ["10.0× smaller", "87.5% less", "75.0% lower", "4.00×", "90.0% retained", "75.0% cheaper"]


def test_registered_through_the_entry_point(make_host):
    assert {"markdown", "html"} <= set(make_host().names("reporter"))


def test_markdown_report(report_input: ReportInput):
    (path,) = MarkdownReporter().write(report_input)
    assert path == report_input.run_dir / "report.md"
    text = path.read_text()
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert "1.00B" in rows["teacher"] and "4.0 GiB" in rows["teacher"] and "0.800 (n=50)" in rows["teacher"]
    assert "100M" in rows["distilled student"] and "512.0 MiB" in rows["distilled student"]
    ratio = [c.strip() for c in rows["**distilled vs teacher**"].split("|")[2:-1]]
    assert ratio == RATIOS
    baseline = [c.strip() for c in rows["**distilled vs baseline**"].split("|")[2:-1]]
    assert baseline[4] == "+32.0 pts" and baseline[5] == "—"
    # Missing values carry their reason; nothing unmeasured is printed as 0.
    assert "baseline student (before distillation) · cost / 1k requests: local model: compute not priced" in text
    assert rows["baseline student (before distillation)"].split("|")[-2].strip() == "—"
    assert (
        "| cost_per_1k_requests_usd | USD | $2.00 (n=50) | — (local model: compute not priced) | $0.500 (n=50) |"
        in text
    )
    # Every measurement with its n, the training summary and the stage summaries.
    assert "| macro_f1 |  | 0.700 (n=50) | 0.300 (n=50) | 0.620 (n=50) |" in text
    assert "Training loss 2.5000 at step 5 → 1.0000 at step 20" in text
    assert "| reasons.label_mismatch | 7 |" in text
    assert "evaluated on the test split (n=50)" in text
    assert '"learning_rate": 0.0002' in text


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_html_report_is_self_contained_and_has_the_numbers(report_input: ReportInput):
    (path,) = HtmlReporter().write(report_input)
    assert path == report_input.run_dir / "report.html"
    parser = _Collector()
    parser.feed(path.read_text())
    names = [t for t, _ in parser.tags]
    # Self-contained: no scripts, stylesheets, images or frames to fetch, no links out of the file.
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(names)
    for _, attrs in parser.tags:
        assert not {"src", "href", "xlink:href"} & set(attrs)
    assert "style" in names
    text = " ".join(parser.text)
    for value in RATIOS + ["0.800 (n=50)", "0.720 (n=50)", "+32.0 pts", "local model: compute not priced"]:
        assert value in text
    # Two charts: task metrics per role (3 roles × 2 metrics = 6 bars) and the loss curve.
    assert names.count("svg") == 2
    bars = [a for t, a in parser.tags if t == "rect" and "fill" in a and float(a.get("height", 0)) > 10]
    assert len(bars) == 6
    (line,) = [a for t, a in parser.tags if t == "polyline"]
    assert len(line["points"].split()) == len(CURVE)
    # The loss curve falls: later points are lower on the page (larger y).
    ys = [float(p.split(",")[1]) for p in line["points"].split()]
    assert ys == sorted(ys)


def test_html_marks_a_missing_metric_instead_of_a_zero_bar(report_input: ReportInput):
    report_input.results = {**RESULTS, "teacher": [m for m in RESULTS["teacher"] if m.name != "macro_f1"]}
    report_input.training_curve = []
    (path,) = HtmlReporter().write(report_input)
    html = path.read_text()
    assert html.count("<svg") == 1 and "No training loss was recorded." in html
    assert re.search(r'class="missing">n/a</text>', html)


def test_model_card(tmp_path, report_input: ReportInput):
    student = tmp_path / "student"
    student.mkdir()
    path = write_model_card(student, report_input)
    text = path.read_text()
    assert path == student / "README.md"
    assert text.startswith("---\nlibrary_name: transformers\n")
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in text
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["pipeline_tag"] == "text-generation" and {"distillation", "nli"} <= set(front["tags"])
    assert front["distillation"] == {
        "method": "sequence-level (SFT on teacher answers)",
        "loss": "sft",
        "teacher": "openai/gpt-4o",
    }
    assert "license" not in front and "datasets" not in front  # unknown: omitted, never guessed
    assert "openai/gpt-4o" in text and RUN_ID in text
    assert all(value in text for value in RATIOS)
    assert "| learning_rate | 0.0002 |" in text and "| num_epochs | 3 |" in text
    assert f'AutoModelForCausalLM.from_pretrained("{student}")' in text


def test_model_card_front_matter_from_a_local_base_and_hub_data(tmp_path, report_input: ReportInput):
    base = tmp_path / "base"
    base.mkdir()
    (base / "README.md").write_text("---\nlicense: apache-2.0\ntags:\n- x\n---\n# Base\nlicense: mit\n")
    report_input.config = {
        **CONFIG,
        "student": {"model": str(base)},
        "train": {"loss": "forward_kl"},
        "data": {"train": "knkarthick/dialogsum", "test": "test.jsonl"},
    }
    front = yaml.safe_load(write_model_card(tmp_path, report_input).read_text().split("---\n")[1])
    assert front["license"] == "apache-2.0" and front["datasets"] == ["knkarthick/dialogsum"]
    assert front["distillation"]["method"] == "logit-level (forward_kl)" and "base_model" not in front


def test_model_card_omits_a_local_base_model(tmp_path, report_input: ReportInput):
    report_input.config = {**CONFIG, "student": {"model": str(tmp_path)}}
    text = write_model_card(tmp_path, report_input).read_text()
    assert "base_model:" not in text


def test_terminal_table():
    from rich.console import Console

    console = Console(record=True, width=220)
    console.print(comparison_table(RESULTS, "accuracy"))
    text = console.export_text()
    for value in RATIOS + ["distilled vs baseline", "+32.0 pts", "0.720 (n=50)"]:
        assert value in text
    assert "local model: compute not priced" in text


def test_report_input_rebuilt_from_a_run_folder(tmp_path):
    run_dir = write_run(tmp_path / RUN_ID, None, CONFIG)
    report = load_report_input(run_dir)
    assert report.run_id == RUN_ID and report.primary_metric == "accuracy"
    assert report.training_curve == CURVE
    assert report.results["student"][0].value == 0.72 and report.config["task"] == "nli"
    (path,) = MarkdownReporter().write(report)
    assert all(value in path.read_text() for value in RATIOS)
