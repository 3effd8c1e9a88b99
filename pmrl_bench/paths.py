"""Where the built-in plug-in folders live: methods/, tasks/ (+ adapters/), slurm/ profiles and sweeps.

A clone (or an editable install) keeps them at the repository's top level; a wheel ships the same
folders inside the package as `pmrl_bench/_shipped/` (setup.py maps them in). The shipped copy wins
when it exists, so an installed wheel never reads a stray folder next to site-packages.
"""

from __future__ import annotations

import json
from pathlib import Path

from pmrl_bench.errors import BenchError

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent
SHIPPED = PACKAGE / "_shipped"
BASE = SHIPPED if SHIPPED.is_dir() else ROOT
METHODS_DIR = BASE / "methods"
TASKS_DIR = BASE / "tasks"
ADAPTERS_DIR = TASKS_DIR / "adapters"
PROFILES_DIR = BASE / "slurm" / "profiles"
SWEEPS_DIR = BASE / "slurm" / "sweeps"


def require_dir(path: Path) -> Path:
    """Return `path` if it is a directory, else say that the installation is incomplete."""
    if not path.is_dir():
        raise BenchError(f"{path} not found: this pmrl_bench installation lacks its built-in folders; reinstall it")
    return path


def read_task_json(name_or_path: str, what: str) -> tuple[dict, Path]:
    """A JSON file published with the tasks (a path, or a file name under tasks/) and its path; one-line error."""
    path = Path(name_or_path) if Path(name_or_path).is_absolute() else TASKS_DIR / name_or_path
    try:
        return json.loads(path.read_text(encoding="utf-8")), path
    except (OSError, ValueError) as exc:
        raise BenchError(f"cannot read the {what} {path}: {exc}") from None
