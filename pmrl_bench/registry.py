"""Registries of methods (methods/*.py) and dataset adapters (tasks/adapters/*.py).

Each plug-in file registers its objects with a decorator that takes the name as a string literal:
`@register_method("pmrl")` or `@register_adapter("msrvtt")`. Names are found by reading the files'
syntax tree (so `list` and name suggestions need no torch import); a file is imported only when
one of its objects is used. A method's `defaults` are read from the same syntax tree when they are a
literal in its class body, so planning a run (config, run id) imports no method file either.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from pmrl_bench.errors import BenchError, unknown_name
from pmrl_bench.paths import ADAPTERS_DIR, METHODS_DIR, require_dir

T = TypeVar("T")

METHODS: dict[str, type] = {}
ADAPTERS: dict[str, Callable[..., Any]] = {}


def _register(table: dict[str, Any], kind: str, name: str) -> Callable[[T], T]:
    def decorator(obj: T) -> T:
        if name in table and table[name] is not obj:
            raise BenchError(f"duplicate {kind} name {name!r} ({table[name]!r} and {obj!r})")
        table[name] = obj
        if isinstance(obj, type):
            obj.name = name  # type: ignore[attr-defined]
        return obj

    return decorator


def register_method(name: str) -> Callable[[T], T]:
    """Class decorator: register an alignment objective under `name`."""
    return _register(METHODS, "method", name)


def register_adapter(name: str) -> Callable[[T], T]:
    """Function decorator: register a dataset adapter under `name`."""
    return _register(ADAPTERS, "adapter", name)


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


@cache
def _scan(directory: Path, decorator: str) -> dict[str, tuple[Path, str]]:
    table: dict[str, tuple[Path, str]] = {}
    for path in sorted(require_dir(directory).glob("*.py")):
        if path.name.startswith("_"):
            continue
        for name, doc in _decorated_names(path, decorator):
            if name in table:
                raise BenchError(f"duplicate name {name!r} in {table[name][0]} and {path}")
            table[name] = (path, doc)
    return table


def _import_file(path: Path, package: str) -> None:
    module_name = f"{package}.{path.stem}"
    if module_name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise


def method_names() -> dict[str, str]:
    """Registered method names with their one-line descriptions."""
    return {n: doc for n, (_, doc) in _scan(METHODS_DIR, "register_method").items()}


def adapter_names() -> dict[str, str]:
    """Registered adapter names with their one-line descriptions."""
    return {n: doc for n, (_, doc) in _scan(ADAPTERS_DIR, "register_adapter").items()}


def get_method(name: str) -> type:
    """The method class registered as `name` (imports its file)."""
    table = _scan(METHODS_DIR, "register_method")
    if name not in table:
        raise unknown_name("method", name, table, "(see `python -m pmrl_bench list methods`)")
    _import_file(table[name][0], "pmrl_bench_methods")
    return METHODS[name]


@cache
def _literal_defaults(path: Path, name: str) -> dict[str, Any] | None:
    """The literal `defaults = {...}` in the body of the method class registered as `name`, else None."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if _registered_name(node, "register_method") != name:
            continue
        for stmt in node.body:  # type: ignore[attr-defined]
            if isinstance(stmt, ast.Assign) and any(getattr(t, "id", None) == "defaults" for t in stmt.targets):
                try:
                    value = ast.literal_eval(stmt.value)
                except ValueError:
                    return None
                return value if isinstance(value, dict) else None
    return None


def method_defaults(name: str) -> dict[str, Any]:
    """A fresh copy of method `name`'s hyper-parameter defaults, from its file's syntax tree when literal (no import)."""
    table = _scan(METHODS_DIR, "register_method")
    if name not in table:
        raise unknown_name("method", name, table, "(see `python -m pmrl_bench list methods`)")
    if name not in METHODS:
        literal = _literal_defaults(table[name][0], name)
        if literal is not None:
            return copy.deepcopy(literal)
    return copy.deepcopy(dict(get_method(name).defaults))


def get_adapter(name: str) -> Callable[..., Any]:
    """The adapter function registered as `name` (imports its file)."""
    table = _scan(ADAPTERS_DIR, "register_adapter")
    if name not in table:
        raise unknown_name("adapter", name, table)
    _import_file(table[name][0], "pmrl_bench_adapters")
    return ADAPTERS[name]
