"""Registries of methods, dataset adapters and in-process tasks, gathered from every plug-in source.

Sources, in order: the built-in folders (methods/, tasks/adapters/), plug-in folders (`--include-path`,
PMRL_BENCH_PATH), entry points (`pmrl_bench.methods`, `pmrl_bench.adapters`) and objects registered
in-process with `@register_method("name")` / `@register_adapter("name")` / `@register_task("name")`
(a notebook, a script, an `--include` module). Names in files are found by reading their syntax tree
(so `list` and name suggestions need no torch import); a file is imported only when one of its names
is used, and a method's literal `defaults` and `modality_counts` are read from the same tree, so planning a run
imports no method file either. A name defined in two places is an error that names both.
"""

from __future__ import annotations

import ast
import copy
import inspect
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from pmrl_bench import plugins
from pmrl_bench.errors import BenchError, unknown_name
from pmrl_bench.paths import ADAPTERS_DIR, METHODS_DIR, require_dir

T = TypeVar("T")

METHODS: dict[str, type] = {}
ADAPTERS: dict[str, Callable[..., Any]] = {}
TASKS: dict[str, Any] = {}
"""In-process task definitions: a mapping of task keys (as in a task YAML) or a function returning one."""

_TABLES = {"method": METHODS, "adapter": ADAPTERS, "task": TASKS}
_DECORATORS = {"method": "register_method", "adapter": "register_adapter"}


@dataclass(frozen=True)
class Entry:
    """Where a plug-in name is defined: a file (imported on use) or an entry point (loaded on use)."""

    name: str
    doc: str
    path: Path | None = None
    entry_point: metadata.EntryPoint | None = None

    @property
    def where(self) -> str:
        """The place, for messages."""
        return str(self.path) if self.path is not None else plugins.describe(self.entry_point)  # type: ignore[arg-type]


def _origin(obj: Any) -> str:
    """The file (or module) that defines `obj`, for messages and to match it with a scanned file."""
    try:
        return str(Path(inspect.getsourcefile(obj) or "").resolve())
    except (TypeError, OSError):
        return f"module {getattr(obj, '__module__', '?')}"


def _is_entry(entry: Entry, obj: Any) -> bool:
    """Whether the registered `obj` is the one `entry` points at (its file, or its entry point's object)."""
    if entry.path is not None:
        return _origin(obj) == str(entry.path.resolve())
    ep = entry.entry_point
    return ep is not None and (ep.module, ep.attr) == (getattr(obj, "__module__", None), getattr(obj, "__qualname__", None))


def _register(kind: str, name: str) -> Callable[[T], T]:
    table = _TABLES[kind]

    def decorator(obj: T) -> T:
        if name in table and table[name] is not obj:
            raise BenchError(f"duplicate {kind} name {name!r}: defined in {_origin(table[name])} and {_origin(obj)}")
        known = scanned(kind).get(name)
        if known is not None and not _is_entry(known, obj):
            raise BenchError(f"duplicate {kind} name {name!r}: defined in {known.where} and {_origin(obj)}")
        table[name] = obj
        if isinstance(obj, type):
            obj.name = name  # type: ignore[attr-defined]
        return obj

    return decorator


def register_method(name: str) -> Callable[[T], T]:
    """Class decorator: register an alignment objective (a `pmrl_bench.Method` subclass) under `name`."""
    return _register("method", name)


def register_adapter(name: str) -> Callable[[T], T]:
    """Function decorator: register a dataset adapter under `name`."""
    return _register("adapter", name)


def register_task(name: str) -> Callable[[T], T]:
    """Register a task under `name`: decorate a function returning the task's keys, or call it on a mapping."""

    def decorator(obj: T) -> T:
        from pmrl_bench.task import load_task

        _register("task", name)(obj)
        load_task.cache_clear()
        return obj

    return decorator


def _registered_name(node: ast.AST, decorator: str) -> str | None:
    """The name a class or function node registers with `@decorator("name")`, if it does."""
    if not isinstance(node, ast.ClassDef | ast.FunctionDef):
        return None
    for dec in node.decorator_list:
        if (
            isinstance(dec, ast.Call)
            and getattr(dec.func, "id", getattr(dec.func, "attr", None)) == decorator
            and dec.args
            and isinstance(dec.args[0], ast.Constant)
        ):
            return dec.args[0].value
    return None


def _decorated_names(path: Path, decorator: str) -> list[tuple[str, str]]:
    """(name, first docstring line) for every `@decorator("name")` in a Python file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        name = _registered_name(node, decorator)
        if name is not None:
            doc = (ast.get_docstring(node) or "").strip().splitlines()  # type: ignore[arg-type]
            found.append((name, doc[0] if doc else ""))
    return found


def _add(table: dict[str, Entry], kind: str, entry: Entry) -> None:
    if entry.name in table:
        raise BenchError(f"duplicate {kind} name {entry.name!r}: defined in {table[entry.name].where} and {entry.where}")
    table[entry.name] = entry


@cache
def _scan(kind: str, directories: tuple[Path, ...]) -> dict[str, Entry]:
    table: dict[str, Entry] = {}
    for directory in directories:
        for path in sorted(directory.glob("*.py")):
            if not path.name.startswith("_"):
                for name, doc in _decorated_names(path, _DECORATORS[kind]):
                    _add(table, kind, Entry(name, doc, path=path))
    for ep in plugins.entry_points(kind).values():
        _add(table, kind, Entry(ep.name, f"(entry point {ep.value})", entry_point=ep))
    return table


def scanned(kind: str) -> dict[str, Entry]:
    """Names of `kind` ("method" or "adapter") defined in files and entry points (nothing is imported)."""
    if kind == "task":
        from pmrl_bench.task import task_entries

        return task_entries()
    builtin = require_dir(METHODS_DIR if kind == "method" else ADAPTERS_DIR)
    return _scan(kind, (builtin, *plugins.folder_dirs(kind)))


def _names(kind: str) -> dict[str, str]:
    plugins.import_includes()
    table = {n: e.doc for n, e in scanned(kind).items()}
    for name, obj in _TABLES[kind].items():
        table.setdefault(name, ((inspect.getdoc(obj) or "").splitlines() or [""])[0])
    return table


def method_names() -> dict[str, str]:
    """Registered method names with their one-line descriptions."""
    return _names("method")


def adapter_names() -> dict[str, str]:
    """Registered adapter names with their one-line descriptions."""
    return _names("adapter")


def _module_name(kind: str, path: Path) -> str:
    """`pmrl_bench_methods.clip` for a built-in file; plug-in folders get a suffix so equal file names never clash."""
    builtin = METHODS_DIR if kind == "method" else ADAPTERS_DIR
    suffix = "" if path.parent == builtin else f"_{zlib.crc32(str(path.parent).encode()):08x}"
    return f"pmrl_bench_{kind}s{suffix}.{path.stem}"


def _get(kind: str, name: str, hint: str = "") -> Any:
    plugins.import_includes()
    table, entries = _TABLES[kind], scanned(kind)
    entry = entries.get(name)
    if entry is None:
        if name in table:
            return table[name]
        raise unknown_name(kind, name, set(entries) | set(table), hint)
    if name not in table:
        if entry.path is not None:
            plugins.import_file(entry.path, _module_name(kind, entry.path))
        else:
            assert entry.entry_point is not None
            obj = plugins.load_entry_point(entry.entry_point)
            table.setdefault(name, obj)
        if name not in table:
            raise BenchError(f"{entry.where} did not register {kind} {name!r} when imported")
    return table[name]


def get_method(name: str) -> type:
    """The method class registered as `name` (imports its file)."""
    return _get("method", name, "(see `python -m pmrl_bench list methods`)")


DEFAULT_MODALITY_COUNTS: tuple[int, int | None] = (2, None)
"""`Method.modality_counts` of a method that declares none: any tuple of two modalities or more."""

_NOT_LITERAL = object()


@cache
def _literal_attrs(path: Path, name: str) -> tuple[dict[str, Any], bool] | None:
    """(literal class attributes assigned in its body, derives directly from `Method`) of the method class
    registered as `name` in `path`; None when the file registers no such class. Non-literal values are marked."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if _registered_name(node, "register_method") != name:
            continue
        values: dict[str, Any] = {}
        for stmt in node.body:  # type: ignore[attr-defined]
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(
                stmt, ast.AnnAssign) and stmt.value is not None else []
            for target in targets:
                if isinstance(target, ast.Name):
                    try:
                        values[target.id] = ast.literal_eval(stmt.value)  # type: ignore[union-attr,arg-type]
                    except ValueError:
                        values[target.id] = _NOT_LITERAL
        bases = [getattr(b, "id", getattr(b, "attr", None)) for b in node.bases]  # type: ignore[attr-defined]
        return values, bases == ["Method"]
    return None


def _class_attribute(name: str, attr: str, inherited: Any) -> Any:
    """Class attribute `attr` of method `name`, read from its file's syntax tree when literal (`inherited`: what a
    direct `Method` subclass that does not assign it has); the class is imported only when the tree cannot tell."""
    plugins.import_includes()
    entry = scanned("method").get(name)
    if entry is not None and entry.path is not None and name not in METHODS:
        found = _literal_attrs(entry.path, name)
        if found is not None:
            values, direct = found
            value = values.get(attr, inherited if direct else _NOT_LITERAL)
            if value is not _NOT_LITERAL:
                return copy.deepcopy(value)
    return copy.deepcopy(getattr(get_method(name), attr))


def method_defaults(name: str) -> dict[str, Any]:
    """A fresh copy of method `name`'s hyper-parameter defaults, from its file's syntax tree when literal (no import)."""
    value = _class_attribute(name, "defaults", {})
    if not isinstance(value, dict):
        raise BenchError(f"method {name!r}: `defaults` must be a dict of parameter -> value, got {value!r}")
    return dict(value)


def counts_text(counts: tuple[int, int | None]) -> str:
    """`modality_counts` in words: '3', '2 to 4', '2 or more'."""
    low, high = counts
    return f"{low}" if low == high else f"{low} to {high}" if high else f"{low} or more"


def method_modality_counts(name: str) -> tuple[int, int | None]:
    """Method `name`'s (smallest, largest or None) modalities per scored tuple, from its file when literal (no import)."""
    value = _class_attribute(name, "modality_counts", DEFAULT_MODALITY_COUNTS)
    try:
        low, high = value
        if not (isinstance(low, int) and low >= 1 and (high is None or isinstance(high, int) and high >= low)):
            raise ValueError
    except (TypeError, ValueError):
        raise BenchError(f"method {name!r}: `modality_counts` must be (smallest, largest or None), got {value!r}") \
            from None
    return low, high


def method_scores(name: str) -> tuple[str, ...]:
    """The scores method `name` offers (its `scores`), from its file when literal (no import); () when none."""
    return tuple(_class_attribute(name, "scores", ()))


def check_score(method: str, scores: Sequence[str], params: dict[str, Any]) -> None:
    """Refuse a `score` parameter that is not one of the scores the method offers (one line naming them)."""
    if "score" in params and scores and params["score"] not in scores:
        raise BenchError(f"--set score={params['score']}: {method} does not offer it; choose one of {', '.join(scores)}")


def get_adapter(name: str) -> Callable[..., Any]:
    """The adapter function registered as `name` (imports its file)."""
    return _get("adapter", name)
