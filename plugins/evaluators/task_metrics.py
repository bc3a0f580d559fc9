"""Task metrics: the task type's own scoring of the parsed answers against the references."""

from __future__ import annotations

from dataclasses import replace

from stillhouse.kernel.interfaces import EvalSubject, Evaluator, Metric


class TaskMetricsEvaluator(Evaluator):
    name = "task_metrics"
    description = "The task type's metrics (accuracy, F1, ROUGE, chrF ...) on the evaluation split."

    def evaluate(self, subject: EvalSubject) -> list[Metric]:
        if not subject.examples:
            return [Metric(subject.task.primary_metric, None, n=0, reason="no evaluation examples")]
        metrics = subject.task.score(subject.examples, subject.parsed)
        # Every number states its n; a task that left it unset scored all examples.
        return [m if m.n or m.value is None else replace(m, n=len(subject.examples)) for m in metrics]
