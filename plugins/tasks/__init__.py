"""Built-in task types: nli, qa, math, summarization, conversation.

Importing this package stays cheap: the metric libraries (rouge-score, sacrebleu) and DuckDB are
imported inside the functions that use them.
"""

from __future__ import annotations

from typing import Any

from stillhouse.kernel import hookimpl
from stillhouse.plugins.tasks.conversation import ConversationTask
from stillhouse.plugins.tasks.math_word import MathTask
from stillhouse.plugins.tasks.nli import NLITask
from stillhouse.plugins.tasks.qa import QATask
from stillhouse.plugins.tasks.summarization import SummarizationTask

BUILTIN_TASKS = (NLITask, QATask, MathTask, SummarizationTask, ConversationTask)


@hookimpl
def register_tasks(register: Any) -> None:
    for task in BUILTIN_TASKS:
        register(task)


__all__ = ["BUILTIN_TASKS", "ConversationTask", "MathTask", "NLITask", "QATask", "SummarizationTask", "register_tasks"]
