"""Checks of ``train.on_policy`` before anything trains (ConfigError, exit 2)."""

from __future__ import annotations

from collections.abc import Set
from typing import Any

from stillhouse.kernel.errors import ConfigError, Location
from stillhouse.kernel.interfaces import Loss, TeacherConfig
from stillhouse.plugins.students.on_policy_config import OnPolicyConfig
from stillhouse.plugins.students.teacher import local_teacher_spec

SCORING_TEACHERS = 'a local model sharing the student\'s tokenizer: teacher.model = "hf/<folder or hub id>"'


def check_on_policy(config: OnPolicyConfig, teacher: TeacherConfig | None, loss: Loss[Any], signals: Set[str]) -> None:
    """Refuse on-policy training that could not work: a teacher that cannot score the student's
    tokens, or a loss without a teacher-distribution term to take on them."""
    if local_teacher_spec(teacher) is None:
        name = teacher.model if teacher is not None else "none"
        raise ConfigError(
            f"train.on_policy needs a teacher that scores the tokens the student samples during training; "
            f"teacher '{name}' is an API model that only answers prompts",
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
