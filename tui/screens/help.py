"""The help screen: what each screen is for and its keys, generated from the live bindings so it
can never disagree with the footer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Markdown

GENERAL = """\
# Stillhouse

Distil a large model into a small one, and watch it happen.

## Everywhere

- `1` Runs · `2` New run · `3` Compare · `4` SQL · `5` Plugins · `6` Sweeps (outside text fields)
- `ctrl+p` command palette: screens, themes, "Open run …" by name
- `ctrl+t` light / dark theme · `f1` or `?` this help · `escape` back
- `ctrl+q` quit: runs keep going, they are separate processes

## Screens

- **Runs**: `enter` opens a run, `/` filters (words, or `status:running`, `task:nli`),
  `s` / `S` sort, `space` marks runs and `c` compares them, `x` cancels a running run,
  `R` resumes a stopped one, `ctrl+r` re-reads the registry.
- **Run detail**: tabs `1`–`6`: overview, training, samples, evaluation, events, artifacts.
- **New run**: pick an example (`enter`) or open a file (`ctrl+o`), edit it (errors show under
  the editor as you type), `ctrl+s` saves, `ctrl+l` launches. The Form tab fills in the key fields.
- **Compare**: `space` picks runs (two or more), `d` shows all config keys or only differences.
- **SQL**: `ctrl+r` runs the query, `ctrl+e` picks an example query.
- **Sweeps**: every `still sweep` with its progress; the selected sweep's trials update live.
  `o` sorts the trials by objective, `enter` opens a trial's run, `c` compares the best trials,
  `n` launches a sweep file, `x` cancels a running sweep, `R` resumes a stopped one.
"""


def bindings_table(screen: Screen) -> str:
    """The screen's own bindings as a Markdown list."""
    rows = []
    for binding in screen.BINDINGS:
        if isinstance(binding, Binding) and binding.description:
            keys = " ".join(f"`{k.strip()}`" for k in binding.key.split(","))
            rows.append(f"- {keys} {binding.description}")
    if not rows:
        return ""
    title = getattr(screen, "title", None) or type(screen).__name__
    return f"\n## Keys on this screen ({title})\n\n" + "\n".join(rows) + "\n"


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,f1,question_mark", "dismiss", "Close")]

    def __init__(self, underneath: Screen) -> None:
        super().__init__()
        self.underneath = underneath

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body", classes="dialog"):
            yield Markdown(GENERAL + bindings_table(self.underneath))

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
