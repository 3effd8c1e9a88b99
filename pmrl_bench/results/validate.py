"""`validate`: check every result file against the record schema and the per-query consistency rules."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pmrl_bench.errors import BenchError
from pmrl_bench.files import stale_temp_files
from pmrl_bench.results.table import load_runs


def cli_validate(args: argparse.Namespace) -> int:
    """Report each bad file with its reason; exit 1 if any is bad, 0 otherwise."""
    root = Path(args.path)
    if not root.exists():
        raise BenchError(f"{root} not found")
    table = load_runs(root)
    for problem in table.problems:
        print(f"{problem.path}: {problem.reason}")
    folders = [root] if root.is_file() else [root, *(Path(d) for d, _, _ in os.walk(root))]
    leftovers = [p for folder in folders for p in stale_temp_files(folder)]
    for path in leftovers:
        if args.clean:
            path.unlink(missing_ok=True)
        print(f"{path}: leftover temp file of a killed writer ({'removed' if args.clean else 'remove with --clean'})")
    bad = len({p.path for p in table.problems})
    print(f"checked {table.n_files} result file(s) under {root}: {table.n_files - bad} valid, {bad} invalid")
    return 1 if bad else 0
