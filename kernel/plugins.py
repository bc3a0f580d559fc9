"""The plugin host: finds plugins through entry points, isolates broken ones, and indexes what
they register.

Loading rules (environment):

- ``STILLHOUSE_PLUGINS`` unset: every plugin in the ``stillhouse`` entry-point group is loaded.
  Set to a comma list: the built-in plugins plus only the third-party plugins named there
  (entry-point names); set to an empty string: built-ins only.
- ``STILLHOUSE_DISABLE_PLUGINS``: comma list of entry-point names never to load (built-ins too).

A plugin that fails to import, or raises while registering, is recorded as a :class:`PluginFailure`
(name, package, error) and skipped; everything else keeps working.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from stillhouse.kernel import hookspecs
from stillhouse.kernel.errors import UnknownPluginError
from stillhouse.kernel.interfaces import PLUGIN_KINDS, Plugin

ENTRY_POINT_GROUP = "stillhouse"
BUILTIN_DIST = "stillhouse"

REGISTRATION_HOOKS = {
    "task": "register_tasks",
    "teacher": "register_teachers",
    "student": "register_students",
    "loss": "register_losses",
    "evaluator": "register_evaluators",
    "reporter": "register_reporters",
    "exporter": "register_exporters",
}


@dataclass
class PluginFailure:
    """A plugin that could not be loaded or registered, and why."""

    name: str
    package: str
    error: str
    stage: str = "import"  # import | register | duplicate


@dataclass
class PluginSource:
    """A loaded plugin (a module or object registered with pluggy) and where it came from."""

    name: str
    package: str
    version: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    provides: dict[str, list[str]] = field(default_factory=dict)  # kind -> names


@dataclass
class Registered:
    cls: type[Plugin]
    source: str


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def _describe_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class PluginHost:
    """Owns the pluggy manager and the index of registered plugin classes by kind and name."""

    def __init__(self, *, entry_points: bool = True, plugins: Iterable[Any] = ()) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.sources: dict[str, PluginSource] = {}
        self.failures: list[PluginFailure] = []
        self._index: dict[str, dict[str, Registered]] = {kind: {} for kind in PLUGIN_KINDS}
        if entry_points:
            self._load_entry_points()
        for plugin in plugins:
            self.add(plugin)
        self._collect()

    # -- loading ---------------------------------------------------------------------------

    def _load_entry_points(self) -> None:
        allowed = _env_list("STILLHOUSE_PLUGINS")
        blocked = set(_env_list("STILLHOUSE_DISABLE_PLUGINS") or [])
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist
            package = dist.metadata["Name"] if dist else "?"
            builtin = package == BUILTIN_DIST
            if ep.name in blocked:
                continue
            if not builtin and allowed is not None and ep.name not in allowed:
                continue
            if ep.name in self.sources:
                continue
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plugin must never take the kernel down
                self.failures.append(PluginFailure(ep.name, package, _describe_error(exc), "import"))
                continue
            version = dist.version if dist else "?"
            self._register(obj, ep.name, package, version, builtin)

    def add(self, plugin: Any, name: str | None = None) -> None:
        """Register a plugin object directly (tests, embedding applications)."""
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        self._register(plugin, name, "local", "", builtin=False)

    def _register(self, obj: Any, name: str, package: str, version: str, builtin: bool) -> None:
        try:
            self.pm.register(obj, name=name)
        except Exception as exc:
            self.failures.append(PluginFailure(name, package, _describe_error(exc), "register"))
            return
        hooks = sorted(impl_name for impl_name in _hook_names(obj))
        self.sources[name] = PluginSource(name, package, version, builtin, hooks)

    # -- registration hooks ----------------------------------------------------------------

    def _collect(self) -> None:
        for kind, hook_name in REGISTRATION_HOOKS.items():
            hook = getattr(self.pm.hook, hook_name)
            # Call implementations one by one so that one failing plugin is isolated; built-ins
            # first, then in registration order, so on a name clash the earlier one keeps it.
            for impl in self.ordered_impls(hook):
                source = impl.plugin_name
                collected: list[type[Plugin]] = []
                try:
                    impl.function(register=collected.append)
                except Exception as exc:
                    self._fail(source, f"{hook_name}: {_describe_error(exc)}", "register")
                    continue
                for cls in collected:
                    self._index_class(kind, cls, source)

    def ordered_impls(self, hook: Any) -> list[Any]:
        impls = hook.get_hookimpls()
        builtin = {name for name, src in self.sources.items() if src.builtin}
        return sorted(impls, key=lambda impl: impl.plugin_name not in builtin)

    def _index_class(self, kind: str, cls: Any, source: str) -> None:
        base = PLUGIN_KINDS[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            self._fail(source, f"registered {cls!r} as a {kind}, but it is not a {base.__name__} subclass", "register")
            return
        if not cls.name:
            self._fail(source, f"{kind} class {cls.__name__} has no name", "register")
            return
        existing = self._index[kind].get(cls.name)
        if existing is not None:
            self._fail(
                source,
                f"{kind} name '{cls.name}' is already registered by plugin '{existing.source}'; "
                f"{cls.__module__}.{cls.__name__} was refused",
                "duplicate",
            )
            return
        self._index[kind][cls.name] = Registered(cls, source)
        src = self.sources.get(source)
        if src is not None:
            src.provides.setdefault(kind, []).append(cls.name)

    def _fail(self, source: str, error: str, stage: str) -> None:
        src = self.sources.get(source)
        self.failures.append(PluginFailure(source, src.package if src else "local", error, stage))

    # -- lookup ----------------------------------------------------------------------------

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def names(self, kind: str) -> list[str]:
        return sorted(self._index[kind])

    def get(self, kind: str, name: str) -> type[Plugin]:
        """The plugin class of ``kind`` called ``name``; a helpful UnknownPluginError otherwise."""
        try:
            return self._index[kind][name].cls
        except KeyError:
            pass
        known = self.names(kind)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else None
        broken = [f for f in self.failures if f.stage != "duplicate"]
        details = [f"plugin '{f.name}' ({f.package}) failed to load: {f.error}" for f in broken]
        raise UnknownPluginError(
            f"no {kind} plugin named '{name}'. Known: {', '.join(known) or 'none'}",
            hint=hint or "run `still plugins` to see what is installed",
            details=details,
        )

    def source_of(self, kind: str, name: str) -> str:
        return self._index[kind][name].source

    def describe(self) -> list[dict[str, Any]]:
        """Every loaded plugin with package, version, what it provides and its hooks."""
        rows = []
        for src in sorted(self.sources.values(), key=lambda s: (not s.builtin, s.name)):
            rows.append(
                {
                    "name": src.name,
                    "package": src.package,
                    "version": src.version,
                    "builtin": src.builtin,
                    "kinds": sorted(src.provides),
                    "provides": {k: sorted(v) for k, v in src.provides.items()},
                    "hooks": src.hooks,
                }
            )
        return rows


def _hook_names(obj: Any) -> list[str]:
    names = []
    specs = {name for name in dir(hookspecs) if not name.startswith("_")}
    for attr in dir(obj):
        if attr in specs and callable(getattr(obj, attr, None)):
            fn = getattr(obj, attr)
            if getattr(fn, f"{hookspecs.PROJECT}_impl", None) is not None:
                names.append(attr)
    return names


_HOST: PluginHost | None = None


def get_host(*, refresh: bool = False) -> PluginHost:
    """The process-wide plugin host (created on first use)."""
    global _HOST
    if _HOST is None or refresh:
        _HOST = PluginHost()
    return _HOST


def set_host(host: PluginHost | None) -> None:
    """Replace the process-wide host (tests, embedding)."""
    global _HOST
    _HOST = host


def loaded_heavy_modules() -> list[str]:
    """Heavy libraries imported so far; used by the import-hygiene test and `still plugins --debug`."""
    heavy = ("torch", "transformers", "litellm", "textual")
    return [m for m in heavy if m in sys.modules]


__all__ = ["PluginHost", "PluginFailure", "get_host", "set_host"]
