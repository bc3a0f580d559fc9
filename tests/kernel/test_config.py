"""Config errors reach the user as one clear screen: exit 2, the field, the file and line, a hint."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from stillhouse.kernel.cli import build_cli
from stillhouse.kernel.config import find_line, load_config, parse_override, to_toml
from stillhouse.kernel.errors import ConfigError


def check(host, path):
    return CliRunner().invoke(build_cli(host), ["config", "check", str(path)], catch_exceptions=False)


def test_valid_config_passes_with_defaults_from_the_reference_workflow(fake_host, pipeline_config):
    loaded = load_config(pipeline_config(), fake_host)
    assert loaded.pipeline.train.learning_rate == 2e-5
    assert loaded.pipeline.train.batch_size == 2 and loaded.pipeline.train.num_epochs == 3
    assert loaded.pipeline.teacher.temperature == 0.7
    result = check(fake_host, pipeline_config())
    assert result.exit_code == 0 and result.output.startswith("ok")


def test_unknown_key_names_field_line_and_suggestion(fake_host, pipeline_config):
    path = pipeline_config(teacher_extra="temprature = 0.2")
    result = check(fake_host, path)
    assert result.exit_code == 2
    assert "unknown key 'teacher.temprature'" in result.output
    assert "did you mean 'temperature'" in result.output
    assert f"{path}:12" in result.output
    assert "Traceback" not in result.output


def test_wrong_type_names_field_and_value(fake_host, pipeline_config):
    path = pipeline_config(extra="[train]\nbatch_size = \"two\"").read_text().replace('[train]\nloss = "sft"\n', "")
    (cfg := pipeline_config()).write_text(path)
    result = check(fake_host, cfg)
    assert result.exit_code == 2
    assert "'train.batch_size'" in result.output and '"two"' in result.output


def test_plugin_options_are_validated_by_the_plugin(fake_host, pipeline_config):
    path = pipeline_config(extra='[train.loss_options]\ntemperature = "hot"').read_text().replace('loss = "sft"', 'loss = "weighted"')
    (cfg := pipeline_config()).write_text(path)
    result = check(fake_host, cfg)
    assert result.exit_code == 2 and "train.loss_options.temperature" in result.output


def test_literal_api_key_is_refused(fake_host, pipeline_config):
    path = pipeline_config(teacher_extra='api_key = "sk-abcdefghijklmnop"')
    result = check(fake_host, path)
    assert result.exit_code == 2
    assert "literal secret" in result.output and "api_key_env" in result.output
    assert "sk-abcdefghijklmnop" not in result.output


def test_key_shaped_value_is_refused_anywhere(fake_host, pipeline_config):
    with pytest.raises(ConfigError, match="looks like a literal API key"):
        load_config(pipeline_config(teacher_extra='api_base = "sk-abcdefghijklmnop123"'), fake_host)


def test_missing_data_file(fake_host, pipeline_config, tmp_path):
    (tmp_path / "data" / "test.jsonl").unlink()
    result = check(fake_host, pipeline_config())
    assert result.exit_code == 2 and "data.test file not found" in result.output


def test_missing_config_file_and_bad_toml(fake_host, tmp_path):
    assert check(fake_host, tmp_path / "nope.toml").exit_code == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("task = nli\n")
    result = check(fake_host, bad)
    assert result.exit_code == 2 and "not valid TOML" in result.output


def test_unknown_plugin_suggests_nearest(fake_host, pipeline_config):
    path = pipeline_config()
    path.write_text(path.read_text().replace('task = "echo"', 'task = "ecko"'))
    result = check(fake_host, path)
    assert result.exit_code == 2 and "no task plugin named 'ecko'" in result.output and "did you mean 'echo'" in result.output


def test_yaml_configs_work_and_errors_have_lines(fake_host, pipeline_config, tmp_path):
    import tomllib

    import yaml

    raw = tomllib.loads(pipeline_config().read_text())
    raw["teacher"]["temperatur"] = 1
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    result = check(fake_host, path)
    assert result.exit_code == 2 and "teacher.temperatur" in result.output and f"{path}:" in result.output


def test_overrides_and_toml_round_trip(fake_host, pipeline_config):
    loaded = load_config(pipeline_config(), fake_host, ["train.num_epochs=1", "teacher.stop=[\"\\n\"]", "name=x"])
    assert loaded.pipeline.train.num_epochs == 1 and loaded.pipeline.teacher.stop == ["\n"]
    import tomllib

    assert tomllib.loads(to_toml(loaded.to_dict())) == {k: v for k, v in _drop_none(loaded.to_dict()).items()}
    assert parse_override("a.b=hello world") == (["a", "b"], "hello world")


def _drop_none(d):
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    if isinstance(d, list):
        return [_drop_none(x) for x in d if x is not None]
    return d


def test_find_line_in_sections():
    text = 'task = "x"\n[teacher]\nmodel = "m"\n\n[student]\nmodel = "s"\n[train.loss_options]\nbeta = 1\n'
    assert find_line(text, ("student", "model")) == 6
    assert find_line(text, ("train", "loss_options", "beta")) == 8
    assert find_line(text, ("task",)) == 1


def test_schema_includes_plugin_options(fake_host):
    result = CliRunner().invoke(build_cli(fake_host), ["config", "schema"])
    schema = json.loads(result.output)
    assert "teacher" in schema["pipeline"]["properties"]
    assert "fail_once" in schema["plugins"]["teacher"]["scripted"]["properties"]


def test_evaluator_options_are_validated_by_the_evaluator(fake_host, pipeline_config):
    ok = load_config(pipeline_config(extra="[evaluate.options.task_metrics]"), fake_host)
    assert ok.pipeline.evaluate.options == {"task_metrics": {}}
    result = check(fake_host, pipeline_config(extra="[evaluate.options.task_metric]"))
    assert result.exit_code == 2 and "did you mean 'task_metrics'" in result.output
    result = check(fake_host, pipeline_config(extra="[evaluate.options.task_metrics]\nsamples = 3"))
    assert result.exit_code == 2 and "evaluate.options.task_metrics.samples" in result.output


def test_config_with_bom_or_bad_bytes_or_a_folder(fake_host, pipeline_config, tmp_path):
    path = pipeline_config()
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # Notepad's byte-order mark is not a key
    assert load_config(path, fake_host).pipeline.task == "echo"
    path.write_bytes(path.read_bytes().replace(b'name = "fake-run"', b'name = "caf\xe9"'))
    with pytest.raises(ConfigError, match="not UTF-8") as info:
        load_config(path, fake_host)
    assert info.value.where.line == 1
    result = check(fake_host, tmp_path)
    assert result.exit_code == 2 and "internal error" not in result.output


def test_data_fields_key_must_be_a_task_field(fake_host, pipeline_config):
    path = pipeline_config(extra='[data.fields]\ntxt = "sentence"')
    result = check(fake_host, path)
    assert result.exit_code == 2, result.output
    assert "data.fields maps 'txt'" in result.output and "did you mean 'text'" in result.output
