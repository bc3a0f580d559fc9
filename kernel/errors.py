"""One error hierarchy for the whole tool.

Every error a user can cause is a :class:`StillhouseError`. It carries a short title, what went
wrong, where (file, line, dotted field path) and a hint. The CLI and the TUI render it once, at the
edge, without a traceback; library code only raises.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Location:
    """Where a problem is: a file, a 1-based line, and a dotted field path; any may be missing."""

    file: str | None = None
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file + (f":{self.line}" if self.line else ""))
        elif self.line:
            parts.append(f"line {self.line}")
        if self.field:
            parts.append(f"field '{self.field}'")
        return ", ".join(parts)


class StillhouseError(Exception):
    """Base of every error the tool reports to a user."""

    exit_code = 1
    title = "Stillhouse error"

    def __init__(
        self,
        what: str,
        *,
        where: Location | None = None,
        hint: str | None = None,
        title: str | None = None,
        details: list[str] | None = None,
    ) -> None:
        super().__init__(what)
        self.what = what
        self.where = where
        self.hint = hint
        self.details = details or []
        if title:
            self.title = title

    def render(self) -> str:
        """The one-screen text shown to a user."""
        lines = [f"Error: {self.title}", f"  {self.what}"]
        if self.where and str(self.where):
            lines.append(f"  at {self.where}")
        for detail in self.details:
            lines.append(f"  - {detail}")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class UserError(StillhouseError):
    """Something the user can fix: bad config, bad data, wrong arguments. Exit code 2."""

    exit_code = 2
    title = "Invalid input"


class ConfigError(UserError):
    title = "Invalid configuration"


class DataError(UserError):
    title = "Invalid data"


class UnknownPluginError(UserError):
    title = "Unknown plugin"


class TeacherError(StillhouseError):
    title = "Teacher failed"


class BudgetExceededError(UserError):
    title = "Budget reached"


class StageError(StillhouseError):
    title = "Stage failed"


class RunNotFoundError(UserError):
    title = "Run not found"


class RegistryError(StillhouseError):
    title = "Registry problem"


class ModelError(UserError):
    title = "Model problem"
