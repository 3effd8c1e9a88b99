"""The output-path guard of every verb that writes a file the user names: never over a result record."""

from __future__ import annotations

from pathlib import Path

from pmrl_bench.errors import BenchError
from pmrl_bench.results.record import read_result


def check_output_path(out: Path, option: str, results_dir: Path | None = None) -> Path:
    """Return `out` if writing it destroys no result; else one-line BenchError (folders, records, record paths)."""
    out = Path(out)
    if out.is_dir():
        raise BenchError(f"{option} {out} is a folder; give a file path")
    if out.suffix == ".json" and results_dir is not None and _inside(out, results_dir):
        raise BenchError(f"{option} {out}: .json files under {results_dir}/ are result records; write elsewhere")
    if out.exists():
        try:
            read_result(out)
        except (ValueError, OSError):
            return out
        raise BenchError(f"{option} {out} is a result record; it is kept: choose another output path")
    return out


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(Path(folder).resolve())
    except (ValueError, OSError):
        return False
    return True
