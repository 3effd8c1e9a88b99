"""Where `report` may write its site: never into a folder of result records (files: pmrl_bench.outputs)."""

from __future__ import annotations

from pathlib import Path

from pmrl_bench.errors import BenchError


def check_output_dir(out: Path) -> None:
    """Refuse a report folder that is a file or already holds JSON files (result records)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BenchError(f"--out {out} is a file; give a folder for the report")
    if out.is_dir() and next(out.rglob("*.json"), None) is not None:
        raise BenchError(f"--out {out} holds JSON files (result records?); give an empty or report-only folder")
