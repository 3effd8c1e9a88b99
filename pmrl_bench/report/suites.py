"""Named task suites (tasks/suites/<name>.yaml): the tasks and primary metrics of one cross-task ranking."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from pmrl_bench.errors import BenchError, unknown_name
from pmrl_bench.paths import TASKS_DIR

SUITES_DIR = TASKS_DIR / "suites"
DEFAULT_SUITE = "default"


@dataclass(frozen=True)
class Suite:
    """A suite: its name and, in order, each task with the primary metric ('<prefix>/<metric>') it is ranked on."""

    name: str
    primaries: dict[str, str]


def suite_files(directory: Path = SUITES_DIR) -> dict[str, Path]:
    """Suite name -> file, for every <directory>/*.yaml."""
    return {p.stem: p for p in sorted(Path(directory).glob("*.yaml"))}


def parse_suite(path: Path) -> Suite:
    """Read one suite file; a malformed one is refused with the file and what is wrong."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise BenchError(f"{path}: unreadable suite file ({str(exc).splitlines()[0]})") from None
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, list) or not tasks:
        raise BenchError(f"{path}: a suite needs `tasks:`, a list of {{task: NAME, primary: PREFIX/METRIC}}")
    primaries = {}
    for item in tasks:
        if not (isinstance(item, dict) and isinstance(item.get("task"), str) and isinstance(item.get("primary"), str)
                and "/" in item["primary"]):
            raise BenchError(f"{path}: each task entry needs `task` and `primary` ('<prefix>/<metric>'), got {item!r}")
        primaries[item["task"]] = item["primary"]
    return Suite(str(data.get("name", path.stem)), primaries)


def load_suite(name: str, directory: Path = SUITES_DIR) -> Suite:
    """The suite called `name` (or a suite file's path); an unknown name is refused with close matches."""
    if name.endswith((".yaml", ".yml")) and Path(name).is_file():
        return parse_suite(Path(name))
    files = suite_files(directory)
    if name not in files:
        raise unknown_name("suite", name, files, f"(suites in {directory}/)")
    return parse_suite(files[name])
