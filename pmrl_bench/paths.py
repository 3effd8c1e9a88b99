"""Where the project's plug-in folders live (methods/, tasks/, tasks/adapters/)."""

from __future__ import annotations

from pathlib import Path

from pmrl_bench.errors import BenchError

ROOT = Path(__file__).resolve().parent.parent
METHODS_DIR = ROOT / "methods"
TASKS_DIR = ROOT / "tasks"
ADAPTERS_DIR = TASKS_DIR / "adapters"


def require_dir(path: Path) -> Path:
    """Return `path` if it is a directory, else explain that the package must be installed from a clone."""
    if not path.is_dir():
        raise BenchError(
            f"{path} not found: pmrl_bench reads methods/ and tasks/ from its source tree; "
            "install it from a clone with `pip install -e .`"
        )
    return path
