"""Bad configs and data files, as a careless user or a hostile file makes them, through the real CLI.

Each must end with exit 2 and a message that names the file (and the line where one applies),
never "internal error" or a traceback; the silent cases must now load what the user meant.
Issue 19 ("Low"): each case here failed on main before the fix.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stillhouse.kernel.config import to_toml

ROWS = [
    {"id": f"r{i}", "premise": f"A man walks a dog number {i} .", "hypothesis": "A man is outside .", "label": "entailment"}
    for i in range(3)
]


@pytest.fixture
def pipeline(tmp_path: Path, stillhouse_home: Path):
    """``pipeline(train_name, train_bytes, **data)`` -> a config path whose data.train is that file."""

    def write(name: str = "train.jsonl", content: bytes | None = None, config_text: str | None = None, **data) -> Path:
        folder = tmp_path / "p"
        folder.mkdir(exist_ok=True)
        if content is not None:
            (folder / name).write_bytes(content)
        config = {
            "task": "nli",
            "data": {"train": name, **data},
            # Never called: every case stops at the data, or is a dry run.
            "teacher": {"model": "openai/unused", "api_base": "http://127.0.0.1:9/v1"},
            "student": {"model": "unused"},
        }
        path = folder / "pipeline.toml"
        path.write_text(config_text if config_text is not None else to_toml(config), encoding="utf-8")
        return path

    return write


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def assert_clear(result, *names: str) -> None:
    """Exit 2, every name (file, file:line, field) in the message, no internal error."""
    assert result.exit_code == 2, result.output
    for name in names:
        assert name in result.output, (name, result.output)
    assert "Traceback" not in result.output and "internal error" not in result.output


def generate(run_still, path: Path):
    return run_still("run", str(path), "--stage", "generate", "--quiet")


def dry_run(run_still, path: Path):
    return run_still("run", str(path), "--dry-run")


# -- internal errors that became clear exit-2 errors -------------------------------------------


def test_data_path_that_is_a_folder(run_still, pipeline, tmp_path):
    (tmp_path / "p" / "rows.jsonl").mkdir(parents=True)
    path = pipeline("rows.jsonl")
    assert_clear(run_still("config", "check", str(path)), "is a folder", f"{path}:4", "data.train")


def test_binary_data(run_still, pipeline):
    path = pipeline("train.jsonl", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    assert_clear(generate(run_still, path), "train.jsonl:1", "binary data")


def test_non_utf8_jsonl_names_the_line(run_still, pipeline):
    content = jsonl(ROWS[:2]) + '{"premise": "Un caf\xe9 .", "hypothesis": "x", "label": "neutral"}\n'.encode("latin-1")
    assert_clear(generate(run_still, pipeline("train.jsonl", content)), "train.jsonl:3", "not UTF-8", "0xe9")


def test_non_utf8_csv_names_the_line(run_still, pipeline):
    content = "premise,hypothesis,label\nA man .,A caf\xe9 .,neutral\n".encode("latin-1")
    assert_clear(generate(run_still, pipeline("train.csv", content)), "train.csv:2", "not UTF-8")


def test_utf16_data_says_so(run_still, pipeline):
    content = "premise,hypothesis,label\nA man .,A man .,neutral\n".encode("utf-16")  # Excel's "Unicode text"
    assert_clear(generate(run_still, pipeline("train.csv", content)), "train.csv:1", "UTF-16")


def test_non_utf8_toml(run_still, pipeline):
    path = pipeline("train.jsonl", jsonl(ROWS))
    path.write_bytes(path.read_bytes().replace(b'task = "nli"', b'# r\xe9sum\xe9\ntask = "nli"'))
    assert_clear(run_still("config", "check", str(path)), f"{path}:1", "not UTF-8")


def test_csv_field_over_128_kib_is_read(run_still, pipeline):
    long_premise = "word " * 40_000  # 200 KB: over Python's default csv field limit of 128 KiB
    content = f"premise,hypothesis,label\n{long_premise},A man .,neutral\n".encode()
    result = dry_run(run_still, pipeline("train.csv", content))
    assert result.exit_code == 0, result.output
    assert "dry run: 1 prompts" in result.output


def test_csv_field_over_the_limit_is_reported(run_still, pipeline, monkeypatch):
    from stillhouse.kernel import data

    monkeypatch.setattr(data, "CSV_FIELD_LIMIT", 1000)
    content = "premise,hypothesis,label\nshort,A man .,neutral\n" + ("x" * 200_000) + ",A man .,neutral\n"
    assert_clear(generate(run_still, pipeline("train.csv", content.encode())), "train.csv:3", "field larger")


def test_corrupt_parquet(run_still, pipeline):
    good = Path(__file__).parents[1] / "fixtures" / "data" / "nli.parquet"
    content = good.read_bytes()
    path = pipeline("train.parquet", content[:200] + b"\x00" * 64 + content[-300:])
    assert_clear(generate(run_still, path), "train.parquet", "Parquet")


def test_json_array_with_a_bad_item_names_its_line(run_still, pipeline):
    content = ("[\n" + ",\n".join(json.dumps(r) for r in ROWS) + ',\n"oops"\n]\n').encode()
    assert_clear(generate(run_still, pipeline("train.json", content)), "train.json:5", "must be a JSON object")


def test_truncated_json_array(run_still, pipeline):
    content = ("[\n" + ",\n".join(json.dumps(r) for r in ROWS) + ",\n{\"premise\": \n").encode()
    assert_clear(generate(run_still, pipeline("train.json", content)), "train.json:6", "invalid JSON", "JSON array")


def test_json_file_with_one_object_says_what_is_expected(run_still, pipeline):
    content = json.dumps({"rows": ROWS}, indent=2).encode()
    assert_clear(generate(run_still, pipeline("train.json", content)), "train.json:1", "JSON array of row objects")


# -- silent problems that now load right or fail at load ----------------------------------------


def test_csv_with_bom_keeps_its_first_column(run_still, pipeline):
    content = "\ufeffpremise,hypothesis,label\nA man walks .,A man is outside .,entailment\n".encode()
    result = dry_run(run_still, pipeline("train.csv", content))
    assert result.exit_code == 0, result.output  # before: "missing field 'premise'" (the column was "\ufeffpremise")
    assert "dry run: 1 prompts" in result.output


def test_csv_with_bom_keeps_its_ids(pipeline, make_host):
    from stillhouse.kernel.data import load_split
    from stillhouse.plugins.tasks.nli import NLITask

    path = pipeline("train.csv", "\ufeffid,premise,hypothesis,label\nrow-7,A man .,A man .,entailment\n".encode())
    loaded = load_split(NLITask(NLITask.Config()), path.parent / "train.csv", "train")
    assert [e.id for e in loaded.examples] == ["row-7"]  # before: "train-0"


def test_jsonl_with_bom_loads(run_still, pipeline):
    result = dry_run(run_still, pipeline("train.jsonl", b"\xef\xbb\xbf" + jsonl(ROWS)))
    assert result.exit_code == 0, result.output
    assert "dry run: 3 prompts" in result.output


def test_toml_with_bom_loads(run_still, pipeline):
    path = pipeline("train.jsonl", jsonl(ROWS))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    result = run_still("config", "check", str(path))
    assert result.exit_code == 0, result.output


def test_json_array_of_objects_loads(run_still, pipeline):
    content = json.dumps(ROWS, indent=2).encode()
    result = dry_run(run_still, pipeline("train.json", content))
    assert result.exit_code == 0, result.output
    assert "dry run: 3 prompts" in result.output


def test_unknown_field_mapping_key(run_still, pipeline):
    path = pipeline("train.jsonl", jsonl(ROWS), fields={"premis": "sentence1"})
    assert_clear(run_still("config", "check", str(path)), "'premis'", "did you mean 'premise'", "hypothesis", f"{path}:")


def test_empty_data_file_fails_at_load(run_still, pipeline):
    result = generate(run_still, pipeline("train.jsonl", b""))
    assert_clear(result, "train.jsonl", "no rows")


def test_empty_test_file_fails_at_generate(run_still, pipeline, tmp_path):
    (tmp_path / "p").mkdir(exist_ok=True)
    (tmp_path / "p" / "test.jsonl").write_bytes(b"\n\n")
    result = generate(run_still, pipeline("train.jsonl", jsonl(ROWS), test="test.jsonl"))
    assert_clear(result, "test.jsonl", "no rows")
