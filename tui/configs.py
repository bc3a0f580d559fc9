"""Pipeline configs in the New run screen: finding examples, validating editor text exactly as
``still run`` would, and the short form's fields. Pure Python; validation runs in a worker."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stillhouse.kernel.config import LoadedConfig, read_config_file, validate_config
from stillhouse.kernel.errors import ConfigError

CONFIG_SUFFIXES = (".toml", ".yaml", ".yml")


def short_path(path: Path) -> str:
    """A path relative to the working directory when it lies below it (what the user typed, in
    effect), else absolute."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def default_example_dirs() -> list[Path]:
    """``./examples`` and the project's examples folder (next to the kernel in a checkout)."""
    import stillhouse.kernel

    project = Path(stillhouse.kernel.__file__).resolve().parent.parent / "examples"
    seen: list[Path] = []
    for folder in (Path.cwd() / "examples", project):
        folder = folder.resolve()
        if folder.is_dir() and folder not in seen:
            seen.append(folder)
    return seen


def example_configs(dirs: list[Path]) -> list[Path]:
    found: list[Path] = []
    for folder in dirs:
        found.extend(sorted(p for p in folder.glob("*") if p.suffix in CONFIG_SUFFIXES and p.is_file()))
    return found


def parse_text(text: str, source: str) -> dict[str, Any]:
    """Parse editor text with the kernel's own reader, so syntax errors read as the CLI's do.

    The reader takes a file; the text goes to a temporary one named like the source (the suffix
    picks TOML or YAML) and errors are pointed back at the source."""
    name = Path(source).name if Path(source).suffix in CONFIG_SUFFIXES else "config.toml"
    with tempfile.TemporaryDirectory(prefix="still-tui-") as tmp:
        path = Path(tmp) / name
        path.write_text(text, encoding="utf-8")
        try:
            raw, _ = read_config_file(path)
        except ConfigError as exc:
            if exc.where is not None:
                exc.where.file = source
            raise
    return raw


def validate_text(text: str, source: str, base_dir: Path, host: Any) -> LoadedConfig:
    """Validate editor text against the kernel and plugin models (raises ConfigError)."""
    raw = parse_text(text, source)
    return validate_config(raw, host, source=source, text=text, base_dir=base_dir)


def describe(loaded: LoadedConfig) -> str:
    p = loaded.pipeline
    return (
        f"task {p.task} · teacher {p.teacher.backend}:{p.teacher.model} · "
        f"student {p.student.trainer}:{p.student.model} · loss {p.train.loss}"
    )


def launch_overrides(loaded: LoadedConfig) -> list[str]:
    """``--set`` arguments that pin relative data paths to where they resolved while editing,
    since the launched copy of the config lives in another folder."""
    args: list[str] = []
    for split in ("train", "validation", "test"):
        value = getattr(loaded.pipeline.data, split)
        if value is not None and not Path(value).expanduser().is_absolute():
            args += ["--set", f"data.{split}={loaded.data_path(split)}"]
    return args


@dataclass(frozen=True)
class FormField:
    key: str  # dotted config key
    label: str
    kind: type = str


FORM_FIELDS = [
    FormField("name", "Name"),
    FormField("task", "Task"),
    FormField("teacher.model", "Teacher model"),
    FormField("student.model", "Student model"),
    FormField("data.train", "Train data"),
    FormField("data.validation", "Validation data"),
    FormField("data.test", "Test data"),
    FormField("data.limit", "Rows per split", int),
    FormField("train.learning_rate", "Learning rate", float),
    FormField("train.num_epochs", "Epochs", float),
    FormField("train.batch_size", "Batch size", int),
    FormField("train.loss", "Loss"),
]


def get_dotted(raw: dict[str, Any], key: str) -> Any:
    node: Any = raw
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def apply_form(raw: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """Set the form's non-empty values into ``raw`` (numbers parsed by each field's kind); an
    emptied field removes the key. A value that does not parse is a ConfigError naming the field."""
    kinds = {f.key: f for f in FORM_FIELDS}
    for key, text in values.items():
        field = kinds[key]
        parts = key.split(".")
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        text = text.strip()
        if not text:
            node.pop(parts[-1], None)
            continue
        try:
            node[parts[-1]] = field.kind(text)
        except ValueError:
            raise ConfigError(
                f"'{key}' must be a {field.kind.__name__}, got {text!r}", hint=f"{field.label}: e.g. 2e-5, 3, 16"
            ) from None
    return raw

