"""Checks of ``train.on_policy`` before anything trains (ConfigError, exit 2).

:func:`static_on_policy_check` looks at the config only (no model, no network): ``still config check``
runs it through :meth:`HfStudentTrainer.check_config`, so a config that could never train on-policy
fails there with file, line and field. :func:`check_on_policy` (at train-stage start) runs it again
and then asks a served teacher whether it really scores tokens (one small request).
"""

from __future__ import annotations

from collections.abc import Set
from typing import Any

from stillhouse.kernel.errors import ConfigError, Location
from stillhouse.kernel.interfaces import Loss, TeacherConfig
from stillhouse.kernel.teaching import HttpTeacherConfig
from stillhouse.plugins.students.on_policy_config import OnPolicyConfig
from stillhouse.plugins.students.teacher import local_teacher_spec

SCORING_TEACHERS = (
    'a local model sharing the student\'s tokenizer (teacher.model = "hf/<folder or hub id>"), or an '
    "OpenAI-compatible server that scores given tokens with prompt_logprobs (vLLM, or `still serve MODEL`; "
    'teacher.model = "openai/<name>", teacher.api_base = "http://HOST:PORT/v1") serving a model with the '
    "student's tokenizer"
)


def cannot_score(problem: str) -> ConfigError:
    return ConfigError(
        f"train.on_policy needs a teacher that scores the tokens the student samples during training; {problem}",
        where=Location(field="teacher.model"),
        hint=f"teachers that can: {SCORING_TEACHERS}; or remove train.on_policy (off-policy distillation "
        "works with any teacher)",
        title="This teacher cannot score on-policy samples",
    )


def served(teacher: TeacherConfig | None) -> bool:
    """An OpenAI-compatible server at ``teacher.api_base`` (it may score tokens; the probe asks)."""
    return isinstance(teacher, HttpTeacherConfig) and bool(teacher.api_base)


def static_on_policy_check(config: OnPolicyConfig, teacher: TeacherConfig | None, signals: Set[str], loss: str) -> None:
    """Refuse what the config alone shows cannot work: no teacher, an API teacher that only answers
    prompts, ``seq_kd`` with a served teacher, or a loss (with its options) without a term on the
    teacher's token distribution (``signals``: the configured loss's ``signals_needed()``)."""
    if teacher is None:
        raise cannot_score("there is no teacher")
    if local_teacher_spec(teacher) is None and not served(teacher):
        raise cannot_score(f"teacher '{teacher.model}' is an API model that only answers prompts")
    if config.seq_kd and local_teacher_spec(teacher) is None:
        raise ConfigError(
            "train.on_policy.seq_kd needs a local teacher to sample completions; a served teacher only scores",
            where=Location(field="train.on_policy.seq_kd"),
            hint='use teacher.model = "hf/<folder or hub id>", or seq_kd = false',
        )
    if "teacher_logprobs" not in signals:
        raise ConfigError(
            f"train.on_policy needs a loss on the teacher's token distribution, but loss '{loss}' uses none "
            "(with its options): on the student's own samples it would only teach the student to imitate itself",
            where=Location(field="train.on_policy"),
            hint='use train.loss = "jsd" (GKD), "reverse_kl", "forward_kl", "skew_kl" or "tvd" with alpha > 0, '
            "or remove train.on_policy",
        )


def check_on_policy(config: OnPolicyConfig, teacher: TeacherConfig | None, loss: Loss[Any], signals: Set[str]) -> None:
    """The static check, then (served teacher) one probe that the server scores given tokens."""
    static_on_policy_check(config, teacher, signals, loss.name)
    if served(teacher):
        from stillhouse.plugins.students.on_policy_served import probe_scoring

        assert isinstance(teacher, HttpTeacherConfig)
        reason = probe_scoring(teacher)
        if reason:
            raise cannot_score(f"teacher '{teacher.model}': {reason}")
