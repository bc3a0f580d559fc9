"""Every hook a Stillhouse plugin can implement, in one place.

Plugins implement hooks with ``@stillhouse.kernel.hookimpl`` and are found through the entry-point
group ``stillhouse``. Registration hooks receive a ``register`` callback (``interfaces.Register``)
and hand over plugin *classes* (subclasses of the ABCs in ``kernel.interfaces``); the kernel
instantiates them with their validated config. Every hook is called in pluggy's order
(``tryfirst``/``trylast``, hook wrappers around the rest). Hooks are synchronous; slow or async work
lives on the registered objects.

docs/plugins.md documents each hook; a test checks that the documentation and these signatures
agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover - typing only
    import click

    from stillhouse.kernel.interfaces import (
        Evaluator,
        Example,
        Exporter,
        Loss,
        Parsed,
        Register,
        Reporter,
        StudentTrainer,
        TaskType,
        Teacher,
        Verdict,
    )
    from stillhouse.kernel.runs import Run

PROJECT = "stillhouse"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- registration -------------------------------------------------------------------------------


@hookspec
def register_tasks(register: Register[TaskType[Any]]) -> None:
    """Register task types: call ``register(TaskTypeSubclass)`` once per task type.

    Called once when the plugin host is created, before any config is validated.
    """


@hookspec
def register_teachers(register: Register[Teacher[Any]]) -> None:
    """Register teacher backends: ``register(TeacherSubclass)``.

    Called once when the plugin host is created.
    """


@hookspec
def register_students(register: Register[StudentTrainer[Any]]) -> None:
    """Register student trainers: ``register(StudentTrainerSubclass)``.

    Called once when the plugin host is created.
    """


@hookspec
def register_losses(register: Register[Loss[Any]]) -> None:
    """Register distillation losses: ``register(LossSubclass)``.

    Called once when the plugin host is created.
    """


@hookspec
def register_evaluators(register: Register[Evaluator[Any]]) -> None:
    """Register evaluators (metrics and measurements): ``register(EvaluatorSubclass)``.

    Called once when the plugin host is created.
    """


@hookspec
def register_reporters(register: Register[Reporter[Any]]) -> None:
    """Register reporters that write the run report: ``register(ReporterSubclass)``.

    Called once when the plugin host is created.
    """


@hookspec
def register_exporters(register: Register[Exporter[Any]]) -> None:
    """Register model exporters (``still export --format``): ``register(ExporterSubclass)``.

    Called once when the plugin host is created.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``still`` CLI: ``@cli.command()`` or ``cli.add_command(cmd)``.

    Called once when the CLI is built, before arguments are parsed. Keep module-level imports light:
    ``still --help`` imports every plugin that implements this hook.
    """


# -- lifecycle observers ------------------------------------------------------------------------


@hookspec
def run_started(run: Run) -> None:
    """A pipeline run started or resumed. ``run.id``, ``run.dir`` and ``run.config`` are set.

    Called after the run folder and its resolved config are written, before the first stage.
    """


@hookspec
def stage_finished(run: Run, stage: str, summary: dict[str, Any]) -> None:
    """A stage (generate, filter, train, evaluate, report) finished successfully.

    ``summary`` is the stage's summary as written to events.jsonl. Called after the event is written.
    """


@hookspec
def run_finished(run: Run, status: str) -> None:
    """A run ended with ``status`` in completed, failed, interrupted.

    Called once per invocation, after the last event is written, also when the run failed.
    """


# -- behaviour ----------------------------------------------------------------------------------


@hookspec(firstresult=True)
def filter_sample(example: Example, parsed: Parsed, verdict: Verdict, task: TaskType) -> Verdict | None:
    """Overrule the task's verdict on one teacher answer during the filter stage.

    Return a :class:`Verdict` to replace the task's decision (e.g. reject answers that are too long,
    with your own reason), or None to keep it. The first non-None result wins.
    """
