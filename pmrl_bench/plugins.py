"""Where plug-ins come from besides the built-in folders: `--include` modules, plug-in folders, entry points.

* `--include mod.name` or `--include path/to/file.py` (environment: PMRL_BENCH_INCLUDE, os.pathsep-separated):
  modules imported before any name is looked up, so their `@register_method` / `@register_task` /
  `@register_adapter` decorators run in-process.
* `--include-path DIR` (environment: PMRL_BENCH_PATH): folders laid out like the repository, with
  `methods/*.py`, `tasks/*.yaml` and `tasks/adapters/*.py` (any of the three).
* Entry points of installed distributions in the groups `pmrl_bench.methods` (a Method class),
  `pmrl_bench.tasks` (a task YAML path or a mapping of task keys) and `pmrl_bench.adapters` (a function).

The CLI options write the environment variables, so the jobs a sweep starts see the same plug-ins.
See docs/plugins.md.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from pmrl_bench.errors import BenchError

ENV_PATH = "PMRL_BENCH_PATH"
ENV_INCLUDE = "PMRL_BENCH_INCLUDE"
GROUPS = {"method": "pmrl_bench.methods", "task": "pmrl_bench.tasks", "adapter": "pmrl_bench.adapters"}
FOLDER_PARTS = {"method": "methods", "task": "tasks", "adapter": "tasks/adapters"}
_IMPORTED: set[str] = set()


def _env_list(var: str) -> list[str]:
    return [p for p in os.environ.get(var, "").split(os.pathsep) if p]


def first_line(exc: BaseException) -> str:
    """`Type: first line of the message` of an exception."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def check_folder(path: Path, source: str) -> Path:
    """`path` if it is a plug-in folder (has methods/*.py, tasks/*.yaml or tasks/adapters/*.py), else a BenchError."""
    if not path.is_dir():
        raise BenchError(f"{source} {path}: not a folder")
    patterns = ("methods/*.py", "tasks/*.yaml", "tasks/adapters/*.py")
    if not any(any(path.glob(p)) for p in patterns):
        raise BenchError(f"{source} {path}: no plug-in files found; expected {', '.join(patterns)}")
    return path


def folders() -> list[Path]:
    """The plug-in folders named by PMRL_BENCH_PATH, in order, each checked."""
    return [check_folder(Path(p), ENV_PATH) for p in _env_list(ENV_PATH)]


def folder_dirs(kind: str) -> list[Path]:
    """The sub-folders of every plug-in folder that hold plug-ins of `kind` ("method", "task", "adapter")."""
    return [f / FOLDER_PARTS[kind] for f in folders() if (f / FOLDER_PARTS[kind]).is_dir()]


def use(include: list[str] | None = None, include_path: list[str] | None = None) -> None:
    """Add plug-in modules and folders for this process and its child jobs, then import the modules."""
    paths = [str(check_folder(Path(p).resolve(), "--include-path")) for p in include_path or []]
    if paths:
        os.environ[ENV_PATH] = os.pathsep.join(dict.fromkeys([*_env_list(ENV_PATH), *paths]))
    specs = [str(Path(s).resolve()) if s.endswith(".py") else s for s in include or []]
    if specs:
        os.environ[ENV_INCLUDE] = os.pathsep.join(dict.fromkeys([*_env_list(ENV_INCLUDE), *specs]))
    import_includes()


def import_includes() -> None:
    """Import every module named in PMRL_BENCH_INCLUDE that is not imported yet (errors: one line naming it)."""
    for spec in _env_list(ENV_INCLUDE):
        if spec in _IMPORTED:
            continue
        _IMPORTED.add(spec)
        try:
            if spec.endswith(".py"):
                import_file(Path(spec), f"pmrl_bench_include_{Path(spec).stem}")
            else:
                importlib.import_module(spec)
        except BenchError as exc:
            raise BenchError(f"--include {spec}: {exc}") from None
        except Exception as exc:
            raise BenchError(f"--include {spec}: cannot import it ({first_line(exc)})") from None


def import_file(path: Path, module_name: str) -> None:
    """Import a Python file as `module_name` (once; a failed import leaves nothing behind)."""
    if module_name in sys.modules:
        return
    if not path.is_file():
        raise FileNotFoundError(f"no such file {path}")
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise


def entry_points(kind: str) -> dict[str, metadata.EntryPoint]:
    """Entry points of `kind` by name; a name that two distributions declare is an error naming both."""
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=GROUPS[kind]):
        if ep.name in found and found[ep.name].value != ep.value:
            raise BenchError(f"duplicate {kind} name {ep.name!r}: {describe(found[ep.name])} and {describe(ep)}")
        found[ep.name] = ep
    return found


def describe(ep: metadata.EntryPoint) -> str:
    """`entry point NAME = VALUE (distribution D)` for messages."""
    dist = f" (distribution {ep.dist.name})" if ep.dist is not None else ""
    return f"entry point {ep.name} = {ep.value}{dist}"


def load_entry_point(ep: metadata.EntryPoint) -> Any:
    """The object an entry point names; an error while importing it is one line naming the entry point."""
    try:
        return ep.load()
    except BenchError as exc:
        raise BenchError(f"{describe(ep)}: {exc}") from None
    except Exception as exc:
        raise BenchError(f"{describe(ep)}: loading it raised {first_line(exc)}") from None
