"""Built-in task types: nli, qa, math, summarization, conversation, and classification (whose label
set comes from the config, so it is not in BUILTIN_TASKS, the tasks that work without options).

Importing this package stays cheap: the metric libraries (rouge-score, sacrebleu) and DuckDB are
imported inside the functions that use them.
"""

from __future__ import annotations

from typing import Any

from stillhouse.kernel import hookimpl
from stillhouse.kernel.interfaces import Register, TaskType
from stillhouse.plugins.tasks.classification import ClassificationTask
from stillhouse.plugins.tasks.conversation import ConversationTask
from stillhouse.plugins.tasks.math_word import MathTask
from stillhouse.plugins.tasks.nli import NLITask
from stillhouse.plugins.tasks.qa import QATask
from stillhouse.plugins.tasks.summarization import SummarizationTask

BUILTIN_TASKS = (NLITask, QATask, MathTask, SummarizationTask, ConversationTask)
CONFIGURED_TASKS = (ClassificationTask,)  # need [task_options] (the label set) to exist


@hookimpl
def register_tasks(register: Register[TaskType[Any]]) -> None:
    for task in (*BUILTIN_TASKS, *CONFIGURED_TASKS):
        register(task)


__all__ = [
    "BUILTIN_TASKS",
    "CONFIGURED_TASKS",
    "ClassificationTask",
    "ConversationTask",
    "MathTask",
    "NLITask",
    "QATask",
    "SummarizationTask",
    "register_tasks",
]
