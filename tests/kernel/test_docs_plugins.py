"""docs/plugins.md against the code it documents: every hook with its exact signature, the
interfaces, the config fields, the testing fixtures, and the complete example plugin (executed)."""

from __future__ import annotations

import ast
import inspect
import re
import types
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest

from stillhouse.kernel import hookspecs, interfaces
from stillhouse.kernel.interfaces import Parsed, Verdict
from stillhouse.testing import fixtures as testing_fixtures

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
TEXT = DOC.read_text(encoding="utf-8")
SPEC_ATTR = f"{hookspecs.PROJECT}_spec"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def spec_hooks() -> dict[str, types.FunctionType]:
    return {name: fn for name, fn in vars(hookspecs).items() if callable(fn) and hasattr(fn, SPEC_ATTR)}


def documented_specs() -> dict[str, list[ast.FunctionDef]]:
    """Functions in the doc's python blocks decorated with ``@hookspec`` / ``@hookspec(...)``."""
    found: dict[str, list[ast.FunctionDef]] = {}
    for block in python_blocks(TEXT):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.FunctionDef) and any(_decorator_name(d) == "hookspec" for d in node.decorator_list):
                found.setdefault(node.name, []).append(node)
    return found


def _decorator_name(node: ast.expr) -> str | None:
    target = node.func if isinstance(node, ast.Call) else node
    return target.id if isinstance(target, ast.Name) else None


def _doc_signature(node: ast.FunctionDef) -> tuple[list[tuple[str, str | None, str | None, str]], str | None]:
    args = node.args
    params = []
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for arg, default in zip(positional, defaults, strict=True):
        params.append((arg.arg, _unparse(arg.annotation), _unparse(default), "POSITIONAL_OR_KEYWORD"))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        params.append((arg.arg, _unparse(arg.annotation), _unparse(default), "KEYWORD_ONLY"))
    return params, _unparse(node.returns)


def _unparse(node: ast.expr | None) -> str | None:
    return ast.unparse(node) if node is not None else None


def _spec_signature(fn: types.FunctionType) -> tuple[list[tuple[str, str | None, str | None, str]], str | None]:
    sig = inspect.signature(fn)  # hookspecs uses postponed annotations: they are the source strings
    params = []
    for p in sig.parameters.values():
        annotation = None if p.annotation is inspect.Parameter.empty else str(p.annotation)
        default = None if p.default is inspect.Parameter.empty else repr(p.default)
        kind = "POSITIONAL_OR_KEYWORD" if p.kind is p.POSITIONAL_ONLY else p.kind.name
        params.append((p.name, annotation, default, kind))
    ret = None if sig.return_annotation is inspect.Signature.empty else str(sig.return_annotation)
    return params, ret


def _doc_spec_options(node: ast.FunctionDef) -> dict[str, object]:
    for deco in node.decorator_list:
        if isinstance(deco, ast.Call) and _decorator_name(deco) == "hookspec":
            return {kw.arg: ast.literal_eval(kw.value) for kw in deco.keywords}
    return {}


# -- hooks ----------------------------------------------------------------------------------------


def test_the_doc_finds_hook_specs_at_all():
    # guards the parser itself: a broken regex would make every check below pass vacuously
    assert len(documented_specs()) >= 10
    assert len(spec_hooks()) >= 10


@pytest.mark.parametrize("name", sorted(spec_hooks()))
def test_every_hook_is_documented_with_its_exact_signature(name: str):
    documented = documented_specs()
    assert name in documented, f"hook {name} is not documented in docs/plugins.md (add a @hookspec block)"
    assert len(documented[name]) == 1, f"hook {name} has {len(documented[name])} signature blocks"
    node = documented[name][0]
    spec = spec_hooks()[name]
    assert _doc_signature(node) == _spec_signature(spec), f"documented signature of {name} differs from kernel/hookspecs.py"
    spec_opts = getattr(spec, SPEC_ATTR)
    doc_opts = _doc_spec_options(node)
    for option in ("firstresult", "historic"):
        assert bool(doc_opts.get(option, False)) == bool(spec_opts[option]), f"{name}: {option} differs"


def test_no_documented_hook_is_missing_from_the_spec():
    assert set(documented_specs()) <= set(spec_hooks())


@pytest.mark.parametrize("name", sorted(spec_hooks()))
def test_every_hook_has_a_heading_and_a_matching_example(name: str):
    assert re.search(rf"^#+ {name}$", TEXT, flags=re.M), f"no heading for {name}"
    spec_params = set(inspect.signature(spec_hooks()[name]).parameters)
    examples = [
        node
        for block in python_blocks(TEXT)
        for node in ast.walk(ast.parse(block))
        if isinstance(node, ast.FunctionDef)
        and node.name == name
        and any(_decorator_name(d) == "hookimpl" for d in node.decorator_list)
    ]
    assert examples, f"no @hookimpl example of {name}"
    for node in examples:  # pluggy passes arguments by name: an example must use the spec's names
        assert {a.arg for a in node.args.args} <= spec_params, f"example of {name} uses unknown argument names"


def test_the_signature_check_catches_a_changed_signature():
    """The comparison is not vacuous: a doc block that differs from the spec is detected."""
    spec = spec_hooks()["stage_finished"]
    changed = ast.parse("@hookspec\ndef stage_finished(run: Run, stage: str) -> None: ...").body[0]
    renamed = ast.parse("@hookspec\ndef stage_finished(run: Run, name: str, summary: dict[str, Any]) -> None: ...").body[0]
    retyped = ast.parse("@hookspec\ndef stage_finished(run: Run, stage: str, summary: dict) -> None: ...").body[0]
    same = ast.parse("@hookspec\ndef stage_finished(run: Run, stage: str, summary: dict[str, Any]) -> None: ...").body[0]
    assert _doc_signature(same) == _spec_signature(spec)
    for node in (changed, renamed, retyped):
        assert _doc_signature(node) != _spec_signature(spec)


def test_every_python_block_is_valid_python():
    for block in python_blocks(TEXT):
        ast.parse(block)


# -- interfaces, records, config fields -----------------------------------------------------------


@pytest.mark.parametrize("cls", sorted(interfaces.PLUGIN_KINDS.values(), key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_every_interface_has_a_section_naming_its_abstract_methods(cls: type):
    match = re.search(rf"^### {cls.__name__}\n(.*?)(?=^##)", TEXT, flags=re.M | re.S)
    assert match, f"no '### {cls.__name__}' section"
    for method in sorted(getattr(cls, "__abstractmethods__", ())):
        assert f"`{method}(" in match.group(1), f"{cls.__name__}.{method} is not described in its section"


def test_every_record_dataclass_is_in_the_records_table():
    records = [obj for obj in vars(interfaces).values() if is_dataclass(obj) and obj.__module__ == interfaces.__name__]
    assert len(records) >= 10
    for record in records:
        if record.__name__ == "FieldSpec":  # described in the TaskType section instead
            assert "FieldSpec(name" in TEXT
            continue
        row = re.search(rf"^\| `{record.__name__}` \|(.*)$", TEXT, flags=re.M)
        assert row, f"record {record.__name__} missing from the records table"
        if record.__name__ in ("TrainJob",):
            continue  # its fields are listed in the StudentTrainer section
        for f in fields(record):
            assert f"`{f.name}`" in row.group(1) or f.name in row.group(1), f"{record.__name__}.{f.name} undocumented"


@pytest.mark.parametrize(
    "model", [interfaces.TaskConfig, interfaces.TeacherConfig, interfaces.StudentConfig, interfaces.TrainConfig, interfaces.EvaluateConfig]
)
def test_every_kernel_config_field_is_documented(model: type):
    for name in model.model_fields:
        assert f"`{name}`" in TEXT, f"{model.__name__}.{name} is not documented"


def test_every_testing_fixture_is_documented_and_every_documented_one_exists():
    defined = {
        name for name, obj in vars(testing_fixtures).items() if hasattr(obj, "_fixture_function_marker") or type(obj).__name__ == "FixtureFunctionDefinition"
    }
    assert {"make_host", "stillhouse_home", "tiny_model_dir", "local_teacher"} <= defined
    table = re.search(r"\| fixture \| scope \| gives \|\n\|[- |]+\|\n((?:\|.*\n)+)", TEXT)
    assert table
    documented = set(re.findall(r"^\| `(\w+)` \|", table.group(1), flags=re.M))
    assert documented == defined


# -- the complete example is real code ------------------------------------------------------------


def _example_module() -> types.ModuleType:
    block = next(b for b in python_blocks(TEXT) if b.startswith("# file: yesno_plugin/__init__.py"))
    module = types.ModuleType("yesno_plugin")
    exec(compile(block, "docs/plugins.md#yesno_plugin", "exec"), module.__dict__)
    return module


def test_the_complete_example_plugin_registers_and_works(make_host, run_still):
    module = _example_module()
    host = make_host(module, entry_points=False)
    assert not host.failures
    task_cls = host.get("task", "yesno")
    task = task_cls(task_cls.Config.model_validate({"strict": True}))
    example = task.example_from_row({"query": "Is the sky blue?", "label": "yes"}, split="train", index=0, source="q.jsonl:1")
    assert example.inputs == {"question": "Is the sky blue?"} and example.reference == "yes"

    parsed = task.parse("Yes.")
    assert parsed.answer == "yes"
    assert task.verify(example, parsed) == Verdict(True)
    assert task.verify(example, task.parse("yes, because light scatters")).reason == "too_wordy"
    assert not task.parse("perhaps").ok
    metric = task.score([example, example], [parsed, task.parse("no")])[0]
    assert (metric.name, metric.value, metric.n) == ("accuracy", 0.5, 2)

    hedged = host.hook.filter_sample(example=example, parsed=Parsed("yes", text="yes, maybe"), verdict=Verdict(True), task=task)
    assert hedged == Verdict(False, "hedged")
    kept = host.hook.filter_sample(example=example, parsed=parsed, verdict=Verdict(True), task=task)
    assert kept is None

    result = run_still("yesno-demo")
    assert result.exit_code == 0 and result.output.strip() == "'yes'"
    listed = run_still("plugins", "--json")
    assert '"yesno"' in listed.output and '"filter_sample"' in listed.output


def test_the_example_plugin_config_rejects_unknown_options(make_host):
    from pydantic import ValidationError

    host = make_host(_example_module(), entry_points=False)
    with pytest.raises(ValidationError):
        host.get("task", "yesno").Config.model_validate({"strictt": True})
