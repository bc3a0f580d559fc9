"""The typed contracts between the kernel and its plugins: a plugin's Config type, typed lookup,
registration hooks called in pluggy's order, the trainer's own [train] model, and every option
checked before the first stage."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from stillhouse.kernel import hookimpl
from stillhouse.kernel.cli import build_cli
from stillhouse.kernel.config import load_config
from stillhouse.kernel.errors import ConfigError
from stillhouse.kernel.interfaces import (
    EmptyConfig,
    EvalSubject,
    Evaluator,
    Loss,
    Metric,
    Register,
    StrictModel,
    TaskType,
    TrainConfig,
)
from tests.kernel import fakes


class LevelConfig(StrictModel):
    level: int = 1


class OtherConfig(StrictModel):
    other: int = 0


class Levelled(Loss[LevelConfig]):
    name = "levelled"

    def __call__(self, inputs: Any) -> Any:
        return self.config.level


def test_the_type_parameter_is_the_plugins_config():
    assert Levelled.Config is LevelConfig
    assert Levelled().config == LevelConfig() and Levelled(LevelConfig(level=3)).config.level == 3
    assert fakes.TaskMetrics.Config is EmptyConfig  # a bare interface: no options


def test_a_config_that_contradicts_the_type_parameter_is_refused_when_the_class_is_defined():
    with pytest.raises(TypeError, match="not a subclass of its type parameter LevelConfig"):

        class Contradicting(Loss[LevelConfig]):  # noqa: F841 - defining it is the test
            Config = OtherConfig


def test_lookup_by_interface(fake_host):
    assert fake_host.get(TaskType, "echo") is fakes.EchoTask
    assert fake_host.get("task", "echo") is fakes.EchoTask  # the untyped spelling still works
    assert fake_host.names(Evaluator) == fake_host.names("evaluator")
    with pytest.raises(TypeError, match="EchoTask is not a plugin interface"):
        fake_host.get(fakes.EchoTask, "echo")


# -- registration hooks in pluggy's order -------------------------------------------------------


class Counter(Evaluator):
    name = "count"

    def evaluate(self, subject: EvalSubject) -> list[Metric]:
        return [Metric("n", float(len(subject.answers)))]


def recording(label: str, calls: list[str], **options: bool) -> object:
    """A plugin whose register_evaluators records that it ran."""

    class Recorder:
        @hookimpl(**options)
        def register_evaluators(self, register: Register[Evaluator[Any]]) -> None:
            calls.append(label)

    Recorder.__name__ = label
    return Recorder()


def test_registration_hooks_run_in_pluggy_order(make_host):
    calls: list[str] = []
    make_host(
        recording("first", calls, tryfirst=True),
        recording("plain", calls),
        recording("last", calls, trylast=True),
        entry_points=False,
    )
    assert calls == ["first", "plain", "last"]


def test_a_hook_wrapper_runs_around_the_registrations_and_sees_them(make_host):
    seen: list[type] = []

    class Observer:
        @hookimpl(wrapper=True)
        def register_evaluators(self, register: Register[Evaluator[Any]]) -> Any:
            result = yield
            seen.extend(register.registered)
            register(Counter)
            return result

    host = make_host(fakes, Observer(), entry_points=False)
    assert fakes.TaskMetrics in seen
    assert host.get(Evaluator, "count") is Counter
    assert host.source_of(Evaluator, "count") == "Observer"  # registered by the wrapper's plugin
    assert host.source_of(Evaluator, "task_metrics") == fakes.__name__


def test_a_raising_implementation_is_reported_and_the_others_still_register(make_host):
    class Broken:
        @hookimpl(tryfirst=True)
        def register_evaluators(self, register: Register[Evaluator[Any]]) -> None:
            register(Counter)
            raise RuntimeError("label store unreachable")

    host = make_host(fakes, Broken(), entry_points=False)
    failures = [f for f in host.failures if f.name == "Broken"]
    assert len(failures) == 1 and "label store unreachable" in failures[0].error
    assert "count" not in host.names(Evaluator)  # nothing of a failed call is kept
    assert "task_metrics" in host.names(Evaluator)


# -- [train] is the student trainer's own model -------------------------------------------------


class StagedTrainConfig(TrainConfig):
    curriculum_stages: int = 1


class StagedStudent(fakes.MemorisingStudent):
    name = "staged"
    Train = StagedTrainConfig


class StagedPlugin:
    @hookimpl
    def register_students(self, register: Register[Any]) -> None:
        register(StagedStudent)


def staged_config(pipeline_config: Any, train_options: str) -> Path:
    path: Path = pipeline_config()
    text = path.read_text().replace('trainer = "memorise"', 'trainer = "staged"')
    path.write_text(text.replace('loss = "sft"', f'loss = "sft"\n{train_options}'))
    return path


def test_a_trainers_own_train_option_is_accepted(make_host, pipeline_config):
    host = make_host(fakes, StagedPlugin(), entry_points=False)
    loaded = load_config(staged_config(pipeline_config, "curriculum_stages = 3"), host)
    assert isinstance(loaded.pipeline.train, StagedTrainConfig) and loaded.pipeline.train.curriculum_stages == 3


def test_a_typo_in_a_trainers_train_option_is_refused_naming_the_key(make_host, pipeline_config):
    host = make_host(fakes, StagedPlugin(), entry_points=False)
    path = staged_config(pipeline_config, "curriculum_stage = 3")
    with pytest.raises(ConfigError) as info:
        load_config(path, host)
    assert "unknown key 'train.curriculum_stage' (did you mean 'curriculum_stages'?)" in info.value.what
    # the same option under a trainer without it is an unknown key too
    path.write_text(path.read_text().replace('trainer = "staged"', 'trainer = "memorise"').replace("_stage ", "_stages "))
    with pytest.raises(ConfigError, match="unknown key 'train.curriculum_stages'"):
        load_config(path, host)


# -- every option checked before the first stage ------------------------------------------------


def test_a_typo_in_evaluate_roles_fails_config_check(fake_host, pipeline_config):
    path: Path = pipeline_config()
    text = path.read_text().replace('evaluators = ["task_metrics"]', 'evaluators = ["task_metrics"]\nroles = ["teacher", "studnet"]')
    path.write_text(text)
    result = CliRunner().invoke(build_cli(fake_host), ["config", "check", str(path)], catch_exceptions=False)
    assert result.exit_code == 2
    line = 1 + text.splitlines().index('roles = ["teacher", "studnet"]')
    assert re.search(r"'evaluate\.roles\.1': .*'teacher', 'baseline' or 'student'.*studnet", result.output)
    assert f"{path.name}:{line}" in result.output
