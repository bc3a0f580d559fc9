"""Built-in evaluators: task metrics, latency, throughput, footprint, cost and capacity.

Each takes an :class:`EvalSubject` (one model's answers on the evaluation split) and returns
Metrics named as the report and registry expect (see ``kernel.comparison``). What they read from
``subject.info``, set by the evaluate stage:

- ``answer_wall_s``   wall time of the batched answering (throughput, local compute cost)
- ``batch_size``, ``max_new_tokens``  the decoding used (defaults: ``[evaluate]``'s)
- ``remote``          True for API models: latency and cost come from the per-call answers
- ``parameters``      declared parameter count of an API model, e.g. "671B"
- ``usd_per_hour``    price of local compute; without it a local model's cost is "not priced"

Modules are imported lazily by the hook so that ``still --help`` stays fast.
"""

from __future__ import annotations

from typing import Any

from stillhouse.kernel import hookimpl
from stillhouse.kernel.interfaces import Evaluator, Register


@hookimpl
def register_evaluators(register: Register[Evaluator[Any]]) -> None:
    from stillhouse.plugins.evaluators.capacity import CapacityEvaluator
    from stillhouse.plugins.evaluators.cost import CostEvaluator
    from stillhouse.plugins.evaluators.footprint import FootprintEvaluator
    from stillhouse.plugins.evaluators.latency import LatencyEvaluator
    from stillhouse.plugins.evaluators.task_metrics import TaskMetricsEvaluator
    from stillhouse.plugins.evaluators.throughput import ThroughputEvaluator

    for cls in (TaskMetricsEvaluator, LatencyEvaluator, ThroughputEvaluator, FootprintEvaluator, CostEvaluator):
        register(cls)
    register(CapacityEvaluator)  # not in the default evaluate.evaluators: it answers many more batches
