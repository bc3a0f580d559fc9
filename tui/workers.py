"""What every widget or screen that starts workers shares.

Workers run with ``exit_on_error=False`` so a bad file or a locked database never takes the app
down; ``Worker.StateChanged`` does not bubble, so each node that starts workers reports their
failures through this mixin, as a notification that says what went wrong and what to do.
"""

from __future__ import annotations

from textual.message_pump import MessagePump
from textual.worker import Worker, WorkerState

from stillhouse.kernel.errors import StillhouseError


def error_message(error: BaseException | None) -> tuple[str, str]:
    """(title, message) for a failure, the kernel's error text when it is one of ours."""
    if isinstance(error, StillhouseError):
        message = error.what
        if error.where and str(error.where):
            message += f"\nat {error.where}"
        message += "".join(f"\n- {d}" for d in error.details)
        if error.hint:
            message += f"\nhint: {error.hint}"
        return error.title, message
    return "Unexpected error", f"{type(error).__name__}: {error}"


class ReportsWorkerErrors(MessagePump):
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            title, message = error_message(event.worker.error)
            self.app.notify(message, title=title, severity="error", timeout=10, markup=False)
