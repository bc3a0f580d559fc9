"""Checks of ``train.on_policy`` before anything trains (ConfigError, exit 2)."""

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


def check_on_policy(config: OnPolicyConfig, teacher: TeacherConfig | None, loss: Loss[Any], signals: Set[str]) -> None:
    """Refuse on-policy training that could not work: a teacher that cannot score the student's
    tokens, or a loss without a teacher-distribution term to take on them."""
    problem = None
    if teacher is None:
        problem = "there is no teacher"
    elif local_teacher_spec(teacher) is None:
        if not isinstance(teacher, HttpTeacherConfig) or not teacher.api_base:
            problem = f"teacher '{teacher.model}' is an API model that only answers prompts"
        else:
            from stillhouse.plugins.students.on_policy_served import probe_scoring

            reason = probe_scoring(teacher)
            problem = f"teacher '{teacher.model}': {reason}" if reason else None
            if problem is None and config.seq_kd:
                raise ConfigError(
                    "train.on_policy.seq_kd needs a local teacher to sample completions; a served teacher only scores",
                    where=Location(field="train.on_policy.seq_kd"),
                    hint='use teacher.model = "hf/<folder or hub id>", or seq_kd = false',
                )
    if problem is not None:
        raise ConfigError(
            f"train.on_policy needs a teacher that scores the tokens the student samples during training; {problem}",
            where=Location(field="teacher.model"),
            hint=f"teachers that can: {SCORING_TEACHERS}; or remove train.on_policy (off-policy distillation "
            "works with any teacher)",
            title="This teacher cannot score on-policy samples",
        )
    if "teacher_logprobs" not in signals:
        raise ConfigError(
            f"train.on_policy needs a loss on the teacher's token distribution, but loss '{loss.name}' uses none "
            "(with its options): on the student's own samples it would only teach the student to imitate itself",
            where=Location(field="train.on_policy"),
            hint='use train.loss = "jsd" (GKD), "reverse_kl", "forward_kl", "skew_kl" or "tvd" with alpha > 0, '
            "or remove train.on_policy",
        )
