"""New run: pick an example or a file, edit it with inline validation (or fill the short form),
save and launch it as a separate ``still run`` process, then follow it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, OptionList, Static, TabbedContent, TabPane, TextArea
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from stillhouse.kernel.config import to_toml
from stillhouse.kernel.errors import StillhouseError, UserError
from stillhouse.tui.configs import (
    FORM_FIELDS,
    apply_form,
    default_example_dirs,
    describe,
    example_configs,
    get_dotted,
    launch_overrides,
    parse_text,
    short_path,
    validate_text,
)
from stillhouse.tui.launch import find_run_by_pid, launch_run, pid_alive
from stillhouse.tui.workers import ReportsWorkerErrors, error_message

if TYPE_CHECKING:
    from textual.timer import Timer

    from stillhouse.tui.app import StillhouseApp

VALIDATE_DELAY = 0.4  # seconds of quiet typing before validating
FIND_RUN_TIMEOUT = 120.0  # seconds a launched process may take to write its run_started event

BLANK = """\
name = "my-run"
task = "nli"

[data]
train = "train.jsonl"
test = "test.jsonl"

[teacher]
model = "openai/gpt-4o-mini"

[student]
model = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""


class Validated(Message):
    def __init__(self, text: str, ok: bool, message: str, line: int | None) -> None:
        super().__init__()
        self.text, self.ok, self.message, self.line = text, ok, message, line


def write_config(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


class ConfigOpened(Message):
    def __init__(self, path: Path, text: str) -> None:
        super().__init__()
        self.path, self.text = path, text


class LaunchUpdate(Message):
    def __init__(self, message: str, *, run_id: str | None = None, error: bool = False) -> None:
        super().__init__()
        self.message, self.run_id, self.error = message, run_id, error


class NewRunScreen(ReportsWorkerErrors, Screen):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save"),
        Binding("ctrl+l", "launch", "Launch"),
        Binding("ctrl+o", "focus_path", "Open file"),
        # priority: a focused Input would take ctrl+w as "delete word"
        Binding("ctrl+w", "form_to_editor", "Form→editor", show=False, priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.source: Path | None = None
        self.valid_text: str | None = None
        self._shown_text: str | None = None  # the text the validation box describes
        self._loaded_text: str = BLANK  # the text as opened: edits differ from it
        self._form_shown: dict[str, str] = {}  # what the form showed, per key: unchanged fields are not written
        self._timer: Timer | None = None

    @property
    def stillhouse(self) -> StillhouseApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="new-body"):
            with Vertical(id="new-side"):
                yield Label("Examples", classes="section-title")
                yield OptionList(id="examples")
                yield Input(placeholder="open file: path + enter", id="config-path")
            with Vertical(id="new-main"):
                with TabbedContent(id="new-tabs", initial="editor-tab"):
                    with TabPane("Editor", id="editor-tab"):
                        # No soft wrap: editor lines are file lines, as the error messages count them.
                        # Tab moves focus on (to the Editor/Form tabs, the examples): TOML needs no
                        # tab characters, and a Tab that stays in the editor is a keyboard trap.
                        yield TextArea(BLANK, id="config-editor", show_line_numbers=True, tab_behavior="focus", soft_wrap=False)
                    with TabPane("Form", id="form-tab"):
                        with VerticalScroll(id="form"):
                            for field in FORM_FIELDS:
                                with Horizontal(classes="form-row"):
                                    yield Label(field.label, classes="form-label")
                                    yield Input(id=f"form-{field.key.replace('.', '-')}", classes="form-input")
                            yield Button("Write to editor (ctrl+w)", id="form-apply", variant="primary")
                with VerticalScroll(id="validation-box"):
                    yield Static("", id="validation")
                yield Static("", id="launch-status")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "New run"
        dirs = [self.stillhouse.examples_dir] if self.stillhouse.examples_dir else default_example_dirs()
        options = self.query_one("#examples", OptionList)
        for path in example_configs(dirs):
            options.add_option(Option(path.stem, id=str(path)))
        if not options.option_count:
            options.add_option(Option("(no examples found)", disabled=True))
        options.focus()
        self._schedule_validation()

    # -- loading and editing ---------------------------------------------------------------

    @on(OptionList.OptionSelected, "#examples")
    def _example_chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.open_unless_edited(Path(event.option.id))

    @property
    def edited(self) -> bool:
        """Whether the editor holds changes not saved anywhere (opening a file would lose them)."""
        return self.query_one("#config-editor", TextArea).text != self._loaded_text

    def open_unless_edited(self, path: Path) -> None:
        """Open ``path``, asking first when that would discard the editor's changes."""
        if not self.edited:
            self.open_config(path)
            return
        from stillhouse.tui.screens.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self.open_config(path)

        self.app.push_screen(
            ConfirmScreen(f"Discard your edits and open {path.name}?", "ctrl+s saves them under the home first."),
            answered,
        )

    @on(Input.Submitted, "#config-path")
    def _path_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.open_unless_edited(Path(event.value.strip()).expanduser())

    @work(thread=True, exclusive=True, exit_on_error=False, group="open")
    def open_config(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}", hint="check the path (~ is expanded)") from None
        self.post_message(ConfigOpened(path.resolve(), text))

    def on_config_opened(self, message: ConfigOpened) -> None:
        self.source = message.path
        editor = self.query_one("#config-editor", TextArea)
        editor.load_text(message.text)
        self._loaded_text = message.text
        editor.focus()
        self.sub_title = short_path(self.source)
        self._schedule_validation()

    @on(TextArea.Changed, "#config-editor")
    def _edited(self) -> None:
        self._schedule_validation()

    def _schedule_validation(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(VALIDATE_DELAY, self._validate_now)

    def _validate_now(self) -> None:
        self.validate(self.query_one("#config-editor", TextArea).text)

    @property
    def validating(self) -> bool:
        """Whether the validation box is behind the editor's text (a check is pending or running)."""
        return self._shown_text != self.query_one("#config-editor", TextArea).text

    @property
    def source_name(self) -> str:
        return short_path(self.source) if self.source else "<editor>"

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    @work(thread=True, exclusive=True, exit_on_error=False, group="validate")
    def validate(self, text: str) -> None:
        from stillhouse.kernel.plugins import get_host

        try:
            loaded = validate_text(text, self.source_name, self.base_dir, get_host())
        except StillhouseError as exc:
            line = exc.where.line if exc.where else None
            result = Validated(text, False, exc.render(), line)
        else:
            result = Validated(text, True, f"✓ valid: {describe(loaded)}", None)
        if not get_current_worker().is_cancelled:
            self.post_message(result)

    def on_validated(self, message: Validated) -> None:
        editor = self.query_one("#config-editor", TextArea)
        if message.text != editor.text:
            return  # stale: the user typed since
        self.valid_text = message.text if message.ok else None
        self._shown_text = message.text
        box = self.query_one("#validation", Static)
        box.update(Text(message.message, style="green" if message.ok else "red"))
        box.set_class(not message.ok, "error")

    # -- form ------------------------------------------------------------------------------

    @on(TabbedContent.TabActivated, "#new-tabs")
    def _tab(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "form-tab":
            self.editor_to_form()

    def editor_to_form(self) -> None:
        try:
            raw = parse_text(self.query_one("#config-editor", TextArea).text, self.source_name)
        except StillhouseError:
            return  # the validation box already says why; keep what the form holds
        for field in FORM_FIELDS:
            value = get_dotted(raw, field.key)
            shown = "" if value is None else str(value)
            self._form_shown[field.key] = shown
            self.query_one(f"#form-{field.key.replace('.', '-')}", Input).value = shown

    @on(Button.Pressed, "#form-apply")
    def action_form_to_editor(self) -> None:
        editor = self.query_one("#config-editor", TextArea)
        try:
            raw = parse_text(editor.text, self.source_name)
        except StillhouseError:
            raw = {}
        values = {f.key: self.query_one(f"#form-{f.key.replace('.', '-')}", Input).value for f in FORM_FIELDS}
        changed = {k: v for k, v in values.items() if v.strip() != self._form_shown.get(k, "")}
        try:
            apply_form(raw, changed)
        except StillhouseError as exc:
            title, message = error_message(exc)
            self.notify(message, title=title, severity="error", markup=False)
            return
        edited = edit_toml(editor.text, changed)
        editor.load_text(edited if edited is not None else to_toml(raw))
        self.query_one(TabbedContent).active = "editor-tab"
        self._schedule_validation()

    # -- saving and launching --------------------------------------------------------------

    def save_path(self) -> Path:
        """Edited configs are saved under the home, never over an example or the user's file."""
        stem = self.source.stem if self.source else "config"
        suffix = self.source.suffix if self.source is not None else ".toml"
        return self.stillhouse.home / "configs" / f"{stem}{suffix}"

    def action_save(self) -> None:
        self.save(self.save_path(), self.query_one("#config-editor", TextArea).text)

    @work(thread=True, exclusive=True, exit_on_error=False, group="save")
    def save(self, path: Path, text: str) -> None:
        write_config(path, text)
        self.app.call_from_thread(self.notify, f"saved {path}", title="Saved", markup=False)

    def action_focus_path(self) -> None:
        self.query_one("#config-path", Input).focus()

    def action_launch(self) -> None:
        text = self.query_one("#config-editor", TextArea).text
        if self.valid_text != text:
            self.notify("fix the config first (see the errors under the editor)", title="Not launched", severity="error", markup=False)
            return
        self.query_one("#launch-status", Static).update("launching…")
        self.launch(self.save_path(), text)

    @work(thread=True, exclusive=True, exit_on_error=False, group="launch")
    def launch(self, path: Path, text: str) -> None:
        """Save, validate (as the CLI will), start `still run` and wait for its run folder."""
        from stillhouse.kernel.plugins import get_host

        home = self.stillhouse.home
        write_config(path, text)
        loaded = validate_text(text, self.source_name, self.base_dir, get_host())
        started = time.time()
        launched = launch_run(path, home, launch_overrides(loaded))
        self.post_message(LaunchUpdate(f"started pid {launched.pid}; waiting for its run folder… (log {launched.log_path})"))
        while time.time() - started < FIND_RUN_TIMEOUT:
            run_id = find_run_by_pid(launched.pid, home, since=started - 1)
            if run_id:
                self.post_message(LaunchUpdate(f"run {run_id} started (pid {launched.pid})", run_id=run_id))
                return
            code = launched.exit_code()
            if code is not None or not pid_alive(launched.pid):
                tail = launched.log_path.read_text(encoding="utf-8", errors="replace")[-1500:]
                self.post_message(LaunchUpdate(f"`still run` exited with code {code} before starting a run:\n{tail}", error=True))
                return
            time.sleep(0.2)
        self.post_message(LaunchUpdate(f"pid {launched.pid} wrote no run folder in {FIND_RUN_TIMEOUT:.0f}s; see {launched.log_path}", error=True))

    def on_launch_update(self, message: LaunchUpdate) -> None:
        status = self.query_one("#launch-status", Static)
        status.update(Text(message.message, style="red" if message.error else ""))
        if message.run_id:
            self.notify(message.message, title="Launched", markup=False)
            self.stillhouse.open_run(message.run_id)


def edit_toml(text: str, values: dict[str, str]) -> str | None:
    """``text`` (TOML) with the form's ``values`` set in place, comments and formatting kept; a
    value is written as typed where it is a TOML number ("2e-4" stays "2e-4"); an emptied field
    removes its key. None when ``text`` is not TOML (YAML): the caller rewrites it whole."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    kinds = {f.key: f.kind for f in FORM_FIELDS}
    try:
        doc = tomlkit.parse(text)
    except TOMLKitError:
        return None
    for key, typed in values.items():
        *tables, leaf = key.split(".")
        node = doc
        for part in tables:
            if part not in node:
                node[part] = tomlkit.table()
            node = node[part]
        typed = typed.strip()
        if not typed:
            if leaf in node:
                del node[leaf]
            continue
        node[leaf] = _literal(typed, kinds.get(key, str))
    return tomlkit.dumps(doc)


def _literal(typed: str, kind: type) -> object:
    """A tomlkit item for a form value: the user's own spelling of a number, else the value."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    if kind in (int, float):
        try:
            item = tomlkit.parse(f"v = {typed}")["v"]
        except TOMLKitError:
            item = None
        if isinstance(item, int) or (kind is float and isinstance(item, float)):
            return item
    return tomlkit.item(kind(typed))
