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
from stillhouse.kernel.config import load_config, validate_config, validate_teacher
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
    TeacherConfig,
    TrainConfig,
)
from stillhouse.kernel.teaching import CallTeacherConfig, HttpTeacherConfig
from stillhouse.plugins.students.config import HfTrainConfig
from stillhouse.plugins.teachers.config import LiteLLMTeacherConfig
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


# -- [teacher] is the chosen backend's own model --------------------------------------------------


def test_the_kernel_teacher_config_holds_only_what_every_teacher_means():
    assert set(TeacherConfig.model_fields) == {
        "backend", "model", "temperature", "top_p", "max_tokens", "stop", "seed", "samples", "logprobs",
        "top_logprobs", "parameters",
    }
    engine = {"concurrency", "max_retries", "timeout", "rpm", "tpm", "budget_usd", "price", "unreachable_after"}
    assert engine <= set(CallTeacherConfig.model_fields)
    assert {"api_base", "api_key_env"} <= set(HttpTeacherConfig.model_fields) - set(CallTeacherConfig.model_fields)
    assert {"deployments", "dtype", "device", "batch_size"} <= set(LiteLLMTeacherConfig.model_fields)
    assert not {"api_base", "api_key_env", "deployments", "dtype", "device", "batch_size"} & set(CallTeacherConfig.model_fields)
    hf_only = {"packing", "group_by_length", "bf16", "top_k", "lr_scheduler"}
    assert not hf_only & set(TrainConfig.model_fields) and hf_only <= set(HfTrainConfig.model_fields)


@pytest.mark.parametrize("option", ['dtype = "float16"', 'api_base = "http://127.0.0.1:9/v1"', "batch_size = 4"])
def test_a_teacher_option_of_another_backend_is_refused_naming_field_and_line(fake_host, pipeline_config, option):
    """The scripted backend's Config is a CallTeacherConfig: the litellm teacher's endpoint and
    local-model options are unknown keys there, as `still config check` (exit 2) reports."""
    path: Path = pipeline_config(teacher_extra=option)
    result = CliRunner().invoke(build_cli(fake_host), ["config", "check", str(path)], catch_exceptions=False)
    assert result.exit_code == 2
    key = option.split(" =")[0]
    line = 1 + path.read_text().splitlines().index(option)
    assert f"unknown key 'teacher.{key}'" in result.output and f"{path.name}:{line}" in result.output


def test_a_teacher_table_is_validated_against_its_backend(fake_host):
    assert isinstance(validate_teacher({"backend": "scripted", "model": "m", "fail_once": ["a"]}, fake_host), fakes.ScriptedConfig)
    with pytest.raises(ConfigError) as info:
        validate_teacher({"backend": "scripted", "model": "m", "device": "cpu"}, fake_host, loc=("teachers", 1))
    assert "unknown key 'teachers.1.device'" in info.value.what


OLD_STYLE = """
task = "echo"

[data]
train = "data/train.jsonl"

[teacher]
model = "openai/gpt-4o-mini"
api_base = "http://127.0.0.1:9/v1"
api_key_env = "OPENAI_API_KEY"
temperature = 0.2
max_tokens = 64
samples = 2
logprobs = true
top_logprobs = 5
concurrency = 4
max_retries = 2
timeout = 30.0
rpm = 600
tpm = 100000
budget_usd = 1.5
retry_base_delay = 0.5
unreachable_after = 3
parameters = "8B"
dtype = "bfloat16"
device = "cpu"
batch_size = 4
workers = 1

[teacher.price]
input_per_mtok = 0.15
output_per_mtok = 0.6

[[teacher.deployments]]
model = "openai/gpt-4o-mini"
api_base = "http://127.0.0.1:9/v1"

[student]
model = "some/student"
dtype = "float32"

[train]
loss = "sft"
learning_rate = 1e-4
lr_scheduler = "cosine"
packing = false
group_by_length = false
top_k = 16
bf16 = false
"""


def test_an_old_style_full_config_still_loads(make_host, pipeline_config):
    """Every teacher option the kernel's TeacherConfig had and every [train] option of the hf
    trainer, as a user's existing file has them: still valid, now in the plugins' own models."""
    host = make_host(fakes)  # with the installed plugins: the litellm teacher, the hf trainer
    path: Path = pipeline_config()
    path.write_text(OLD_STYLE)
    loaded = load_config(path, host)
    teacher, train = loaded.pipeline.teacher, loaded.pipeline.train
    assert isinstance(teacher, LiteLLMTeacherConfig) and isinstance(train, HfTrainConfig)
    assert (teacher.api_base, teacher.api_key_env, teacher.concurrency, teacher.budget_usd) == ("http://127.0.0.1:9/v1", "OPENAI_API_KEY", 4, 1.5)
    assert (teacher.dtype, teacher.device, teacher.batch_size, teacher.unreachable_after) == ("bfloat16", "cpu", 4, 3)
    assert teacher.price is not None and teacher.price.output_per_mtok == 0.6 and teacher.deployments[0].api_base
    assert (train.lr_scheduler, train.packing, train.group_by_length, train.top_k, train.bf16) == ("cosine", False, False, 16, False)
    # the resolved config (what a run stores, every default spelled out) validates again to the same
    again = validate_config(loaded.to_dict(), host, base_dir=path.parent)
    assert again.to_dict() == loaded.to_dict()
    assert load_config(path, host, ["teacher.concurrency=8"]).pipeline.teacher.concurrency == 8


def test_the_options_a_resume_may_change_are_options_of_the_models():
    """kernel/resume.py names options by string; they must stay options where they moved to."""
    from stillhouse.kernel.resume import TEACHER_OPERATIONAL, TRAIN_AFTER_CHECKPOINT

    assert TEACHER_OPERATIONAL <= set(LiteLLMTeacherConfig.model_fields)
    assert TRAIN_AFTER_CHECKPOINT <= set(TrainConfig.model_fields)


def test_a_jobs_hyperparameters_go_to_the_chosen_plugins_sections(make_host, pipeline_config):
    """DistillationJob sorts hyperparameters by the options of the chosen trainer and teacher."""
    from stillhouse.kernel.job import DistillationJob

    make_host(fakes)  # sets the process host the job uses: the installed litellm teacher and hf trainer
    train_file = pipeline_config().parent / "data" / "train.jsonl"
    options = {"packing": False, "learning_rate": 1e-4, "concurrency": 2, "temperature": 0.1}
    job = DistillationJob(
        teacher_model="openai/gpt-4o-mini", student_model="some/student", training_data=train_file,
        task_type="echo", hyperparameters=options,
    )
    assert job.raw["train"] == {"packing": False, "learning_rate": 1e-4}
    assert (job.raw["teacher"]["concurrency"], job.raw["teacher"]["temperature"]) == (2, 0.1)
    pipeline = job.config().pipeline
    assert isinstance(pipeline.train, HfTrainConfig) and pipeline.train.packing is False
    with pytest.raises(ConfigError, match="unknown hyperparameter 'packingg'"):
        DistillationJob(
            teacher_model="m", student_model="s", training_data=train_file, task_type="echo",
            hyperparameters={"packingg": True},
        )
