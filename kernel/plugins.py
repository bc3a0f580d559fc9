"""The plugin host: finds plugins through entry points, isolates broken ones, and indexes what
they register.

Loading rules (environment):

- ``STILLHOUSE_PLUGINS`` unset: every plugin in the ``stillhouse`` entry-point group is loaded.
  Set to a comma list: the built-in plugins plus only the third-party plugins named there
  (entry-point names); set to an empty string: built-ins only.
- ``STILLHOUSE_DISABLE_PLUGINS``: comma list of entry-point names never to load (built-ins too).

A plugin that fails to import, or raises while registering, is recorded as a :class:`PluginFailure`
(name, package, error) and skipped; everything else keeps working.

Registration hooks are called through pluggy, so ``tryfirst``/``trylast`` and hook wrappers behave
as pluggy documents them. On a name clash the plugin loaded first keeps the name (built-ins are
loaded first), whatever the call order.
"""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from types import CodeType, FrameType, TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload

import pluggy
from pluggy import HookCaller

from stillhouse.kernel import hookspecs
from stillhouse.kernel.errors import UnknownPluginError
from stillhouse.kernel.interfaces import PLUGIN_KINDS, Plugin

if TYPE_CHECKING:  # pragma: no cover - typing only: click is imported by the CLI, not by the host
    import click

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
    cls: type[Plugin[Any]]
    source: str


P = TypeVar("P", bound=Plugin[Any])
T = TypeVar("T")


class Registrar:
    """The ``register`` callback of one registration-hook call (``interfaces.Register``): collects
    each class with the plugin that handed it over, found as the hook implementation on the stack
    (every implementation gets the same callback, so the call itself cannot say who it came from)."""

    def __init__(self, implementations: dict[CodeType, str]) -> None:
        self._implementations = implementations
        self.collected: list[tuple[type[Plugin[Any]], str]] = []

    def __call__(self, cls: type[Plugin[Any]], /) -> None:
        frame: FrameType | None = inspect.currentframe()
        frames = []
        while frame is not None:
            frames.append(frame)
            frame = frame.f_back
        self.collected.append((cls, _innermost_plugin(reversed(frames), self._implementations) or "?"))

    @property
    def registered(self) -> tuple[type[Plugin[Any]], ...]:
        return tuple(cls for cls, _ in self.collected)


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
        load_order = {name: i for i, name in enumerate(self.sources)}
        builtin = self._builtin_names()
        for kind, hook_name in REGISTRATION_HOOKS.items():
            collected = self._call_isolated(hook_name, _register_all)
            # The plugin loaded first keeps a name (built-ins first), whatever pluggy's call order.
            first_loaded = sorted(collected, key=lambda item: (item[1] not in builtin, load_order.get(item[1], len(load_order))))
            for cls, source in first_loaded:
                self._index_class(kind, cls, source)

    def add_commands(self, cli: click.Group) -> None:
        """Call ``register_commands(cli)``: every plugin adds its commands (a failing one is recorded)."""
        self._call_isolated("register_commands", lambda caller, _: caller(cli=cli))

    def _call_isolated(self, hook_name: str, call: Callable[[HookCaller, dict[CodeType, str]], T]) -> T:
        """``call`` the hook through pluggy, with the plugin of each implementation's code; when an
        implementation raises, record the failure and call again without that plugin, so the
        others still run."""
        excluded: list[object] = []
        while True:
            caller = self.pm.subset_hook_caller(hook_name, remove_plugins=excluded)
            implementations = {
                code: impl.plugin_name for impl in caller.get_hookimpls() if (code := _code_of(impl.function)) is not None
            }
            try:
                return call(caller, implementations)
            except Exception as exc:  # a broken plugin must never take the kernel down
                culprit = _innermost_plugin(_traceback_frames(exc.__traceback__), implementations)
                # Unknown (no implementation frame): every third-party plugin of the hook is suspect.
                suspects = [culprit] if culprit else [name for name in implementations.values() if name not in self._builtin_names()]
                suspects = [name for name in dict.fromkeys(suspects) if self.pm.get_plugin(name) not in excluded]
                if not suspects:
                    raise
                for name in suspects:
                    self._fail(name, f"{hook_name}: {_describe_error(exc)}", "register")
                    excluded.append(self.pm.get_plugin(name))

    def _builtin_names(self) -> set[str]:
        return {name for name, src in self.sources.items() if src.builtin}

    def _index_class(self, kind: str, cls: object, source: str) -> None:
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

    def names(self, kind: str | Callable[..., Plugin[Any]]) -> list[str]:
        return sorted(self._index[_kind_name(kind)])

    # The interface is taken as Callable[..., P], not type[P]: mypy refuses an abstract class where
    # type[P] is expected (type-abstract), and every interface is abstract.
    @overload
    def get(self, kind: str, name: str) -> type[Plugin[Any]]: ...

    @overload
    def get(self, kind: Callable[..., P], name: str) -> type[P]: ...

    def get(self, kind: Callable[..., Plugin[Any]] | str, name: str) -> type[Plugin[Any]]:
        """The plugin class of ``kind`` called ``name``; a helpful UnknownPluginError otherwise.

        ``kind`` is the interface (``host.get(TaskType, "nli")`` is typed ``type[TaskType]``) or,
        untyped, its kind name (``"task"``)."""
        kind_name = _kind_name(kind)
        try:
            return self._index[kind_name][name].cls
        except KeyError:
            pass
        known = self.names(kind_name)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else None
        broken = [f for f in self.failures if f.stage != "duplicate"]
        details = [f"plugin '{f.name}' ({f.package}) failed to load: {f.error}" for f in broken]
        raise UnknownPluginError(
            f"no {kind_name} plugin named '{name}'. Known: {', '.join(known) or 'none'}",
            hint=hint or "run `still plugins` to see what is installed",
            details=details,
        )

    def source_of(self, kind: str | Callable[..., Plugin[Any]], name: str) -> str:
        return self._index[_kind_name(kind)][name].source

    def describe(self) -> list[dict[str, Any]]:
        """Every loaded plugin with package, version, what it provides and its hooks."""
        rows: list[dict[str, Any]] = []
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


def _register_all(caller: HookCaller, implementations: dict[CodeType, str]) -> list[tuple[type[Plugin[Any]], str]]:
    """Call a registration hook once: every plugin's classes, with the plugin that registered each."""
    registrar = Registrar(implementations)
    caller(register=registrar)
    return registrar.collected


def _kind_name(kind: str | Callable[..., Plugin[Any]]) -> str:
    if isinstance(kind, str):
        return kind
    interfaces = {cls: cls.kind for cls in PLUGIN_KINDS.values()}
    if kind not in interfaces:
        raise TypeError(f"{getattr(kind, '__name__', kind)} is not a plugin interface; use one of {', '.join(c.__name__ for c in interfaces)}")
    return interfaces[kind]


def _code_of(function: Any) -> CodeType | None:
    """The code object that runs when pluggy calls a hook implementation (a function, or a bound
    method, which forwards ``__code__`` to its function)."""
    code = getattr(function, "__code__", None)
    return code if isinstance(code, CodeType) else None


def _traceback_frames(tb: TracebackType | None) -> list[FrameType]:
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames


def _innermost_plugin(frames: Iterable[FrameType], implementations: dict[CodeType, str]) -> str | None:
    """The plugin of the innermost hook implementation among ``frames`` (outermost first): the one
    that called ``register`` or raised, also when a wrapper of another plugin is further out."""
    found = None
    for frame in frames:
        found = implementations.get(frame.f_code, found)
    return found


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


__all__ = ["PluginFailure", "PluginHost", "Registrar", "get_host", "set_host"]
