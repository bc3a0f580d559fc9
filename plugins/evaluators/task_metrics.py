"""Task metrics: the task type's own scoring of the parsed answers against the references.

For a closed-label task (``TaskType.label_choices()``) on a model that can score choices (local
models), the labels are also ranked by log-likelihood given the prompt and scored by the task the
same way, as ``<metric>_ranked`` (``accuracy_ranked``, ``macro_f1_ranked``): what the model prefers,
even when its free text rambles past the label. The unsuffixed metrics stay free generation, parsed
(comparable with API teachers, which keep free generation); their unit says so.
"""

from __future__ import annotations

from dataclasses import replace

from stillhouse.kernel.interfaces import EvalSubject, Evaluator, Metric, Parsed
from stillhouse.plugins.evaluators.common import is_remote, setting

GENERATED = "free generation, parsed"
RANKED = "rank classification: the label with the highest summed log-probability after the prompt"


class TaskMetricsEvaluator(Evaluator):
    name = "task_metrics"
    description = "The task type's metrics (accuracy, F1, ROUGE, chrF ...) on the evaluation split; labels also ranked."

    def evaluate(self, subject: EvalSubject) -> list[Metric]:
        if not subject.examples:
            return [Metric(subject.task.primary_metric, None, n=0, reason="no evaluation examples")]
        metrics = subject.task.score(subject.examples, subject.parsed)
        labels = subject.task.label_choices()
        # Every number states its n; a task that left it unset scored all examples.
        metrics = [m if m.n or m.value is None else replace(m, n=len(subject.examples)) for m in metrics]
        if not labels:
            return metrics
        metrics = [replace(m, unit=m.unit or GENERATED) for m in metrics]
        return metrics + self._ranked(subject, labels, [m.name for m in metrics])

    def _ranked(self, subject: EvalSubject, labels: list[str], names: list[str]) -> list[Metric]:
        def missing(reason: str) -> list[Metric]:
            return [Metric(f"{name}_ranked", None, reason=reason, unit=RANKED) for name in names]

        if not setting(subject, "rank_choices"):
            return missing("not measured: evaluate.rank_choices = false")
        if subject.model is None or is_remote(subject):
            return missing("not measured: API models keep free generation")
        prompts = [subject.task.student_messages(e) for e in subject.examples]
        try:
            scores = subject.model.score_choices(prompts, labels, batch_size=int(setting(subject, "batch_size")))
        except NotImplementedError as exc:
            return missing(f"not measured: {exc}")
        chosen = [Parsed(answer=labels[max(range(len(labels)), key=row.__getitem__)]) for row in scores]
        subject.info["ranked_answers"] = [p.answer for p in chosen]
        ranked = subject.task.score(subject.examples, chosen)
        return [
            replace(m, name=f"{m.name}_ranked", unit=RANKED, n=m.n or (len(subject.examples) if m.value is not None else 0))
            for m in ranked
        ]
