"""`validate`: check every result file against the record schema and the per-query consistency rules."""

from __future__ import annotations

import argparse
from pathlib import Path

from pmrl_bench.errors import BenchError
from pmrl_bench.results.table import load_runs


def cli_validate(args: argparse.Namespace) -> int:
    """Report each bad file with its reason; exit 1 if any is bad, 0 otherwise."""
    root = Path(args.path)
    if not root.exists():
        raise BenchError(f"{root} not found")
    table = load_runs(root)
    for problem in table.problems:
        print(f"{problem.path}: {problem.reason}")
    bad = len({p.path for p in table.problems})
    print(f"checked {table.n_files} result file(s) under {root}: {table.n_files - bad} valid, {bad} invalid")
    return 1 if bad else 0
