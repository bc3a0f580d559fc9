"""Hugging Face datasets as data splits: ``hf:`` sources and folders written by ``save_to_disk``.

A split in ``[data]`` may be

- ``"hf:owner/name"``: a dataset on the Hub, loaded with ``datasets.load_dataset`` through its
  cache; options after ``?``: ``split`` (default: the Stillhouse split's own name, train,
  validation or test), ``subset`` (the dataset's config name) and ``revision`` (a branch, tag or
  commit), e.g. ``"hf:nyu-mll/glue?subset=mnli&split=validation_matched"``;
- ``"hf:path/to/folder"``: a local dataset repo (data files and a README, no loading script), or a
  folder written by ``save_to_disk``, relative to the config file's folder like data files;
- ``"path/to/folder"``: a folder written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``.

Rows come out of :func:`dataset_rows` as ``(row number, row)`` like a file's lines, so field mapping
and bad-row handling are the same as for files. ClassLabel columns give their label names (the
``-1`` "no label" gives None). Problems a user can fix before any teacher call (a dataset not in
the cache while offline, a split that does not exist, an unknown option) are ConfigErrors raised at
config check by :func:`check_dataset_source`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from stillhouse.kernel.errors import ConfigError, DataError, Location

HF_PREFIX = "hf:"
OPTIONS = ("split", "subset", "revision")
SAVED_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")  # what save_to_disk writes


@dataclass(frozen=True)
class DatasetSource:
    """A parsed ``hf:`` value or save_to_disk folder."""

    name: str  # a Hub id, or an absolute local folder
    split: str | None = None
    subset: str | None = None
    revision: str | None = None

    @property
    def local(self) -> bool:
        return Path(self.name).is_absolute()


def is_dataset_source(path: str | Path) -> bool:
    """An ``hf:`` value or a folder written by save_to_disk (rather than a data file)."""
    return str(path).startswith(HF_PREFIX) or is_saved_dataset(Path(path))


def is_saved_dataset(folder: Path) -> bool:
    return folder.is_dir() and any((folder / marker).is_file() for marker in SAVED_MARKERS)


def resolve_source(value: str, base_dir: Path) -> Path:
    """The value as stored in a run: a local folder named after ``hf:`` made absolute (against the
    config's folder), so a resume finds it from anywhere; a Hub id unchanged."""
    name, sep, query = value.removeprefix(HF_PREFIX).partition("?")
    local = (base_dir / Path(name).expanduser()).resolve()
    if local.is_dir():
        name = str(local)
    return Path(f"{HF_PREFIX}{name}{sep}{query}")


def parse_source(path: str | Path) -> DatasetSource:
    text = str(path)
    if not text.startswith(HF_PREFIX):
        return DatasetSource(str(Path(text).resolve()))
    name, _, query = text.removeprefix(HF_PREFIX).partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown or not name:
        raise ConfigError(
            f"bad Hugging Face dataset source '{text}'" + (f": unknown option {', '.join(unknown)}" if unknown else ""),
            hint="write hf:owner/name, optionally ?split=train&subset=CONFIG&revision=main",
        )
    return DatasetSource(name, options.get("split") or None, options.get("subset") or None, options.get("revision") or None)


def check_dataset_source(path: str | Path, split: str, where: Location) -> None:
    """Config check: the dataset opens (from the cache when offline) and has the split."""
    try:
        _split_of(parse_source(path), split)
    except ConfigError as exc:
        raise ConfigError(exc.what, where=where, hint=exc.hint, details=exc.details) from None


def dataset_rows(path: str | Path, split: str, limit: int | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row number, row)`` pairs of the source's split, the first ``limit`` of them."""
    try:
        dataset = _split_of(parse_source(path), split)
    except ConfigError as exc:
        raise DataError(exc.what, where=Location(str(path)), hint=exc.hint) from None
    if limit:
        dataset = dataset.select(range(min(limit, len(dataset))))
    labels = _class_label_columns(dataset)
    for index, row in enumerate(dataset):
        for column, names in labels.items():
            value = row.get(column)
            row[column] = names[value] if isinstance(value, int) and 0 <= value < len(names) else None
        yield index + 1, row


def _class_label_columns(dataset: Any) -> dict[str, list[str]]:
    from datasets import ClassLabel

    return {name: feature.names for name, feature in dataset.features.items() if isinstance(feature, ClassLabel)}


def _split_of(source: DatasetSource, default_split: str) -> Any:
    """The ``datasets.Dataset`` of one split; ConfigError naming the splits there are if it is missing."""
    opened = _open(source)
    from datasets import Dataset

    wanted = source.split or default_split
    if isinstance(opened, Dataset):  # a single saved Dataset is whatever split it is named for
        if source.split and opened.split and str(opened.split) != source.split:
            raise ConfigError(f"{_describe(source)} holds only the split '{opened.split}', not '{source.split}'")
        return opened
    if wanted not in opened:
        raise ConfigError(
            f"{_describe(source)} has no split '{wanted}'",
            hint=f"its splits: {', '.join(opened)}; choose one with ?split=NAME",
        )
    return opened[wanted]


@functools.lru_cache(maxsize=8)
def _open(source: DatasetSource) -> Any:
    """A Dataset or DatasetDict (memory-mapped Arrow; cached so config check and stages open it once)."""
    import datasets

    folder = Path(source.name)
    if source.local and is_saved_dataset(folder):
        return datasets.load_from_disk(str(folder))
    if source.local and not folder.is_dir():
        raise ConfigError(f"{_describe(source)}: no such folder")
    try:
        return datasets.load_dataset(source.name, source.subset, revision=source.revision)
    except Exception as exc:  # noqa: BLE001 - datasets raises many types; each becomes one message
        if not source.local and _offline():
            raise ConfigError(
                f"{_describe(source)} is not in the local datasets cache and Hugging Face is offline (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE)",
                hint="prefetch it once while online: python -c \"import datasets; datasets.load_dataset("
                + ", ".join(repr(a) for a in (source.name, source.subset) if a)
                + (f", revision={source.revision!r}" if source.revision else "")
                + ')"',
            ) from None
        raise ConfigError(f"cannot load {_describe(source)}: {type(exc).__name__}: {exc}") from None


def _offline() -> bool:
    return any(os.environ.get(name, "").lower() in ("1", "true", "yes", "on") for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def _describe(source: DatasetSource) -> str:
    what = f"the dataset {source.name}" if source.local else f"the Hugging Face dataset {source.name}"
    return what + (f" (subset {source.subset})" if source.subset else "") + (f" at revision {source.revision}" if source.revision else "")
