"""`pmrl_bench export`: every run's metrics as a tidy CSV (one row per run x metric), for pandas or a spreadsheet."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

from pmrl_bench.files import atomic_write_text
from pmrl_bench.outputs import check_output_path
from pmrl_bench.report.leaderboard import load_table
from pmrl_bench.results.table import RunTable, task_entities

FIELDS = ("task", "method", "kind", "regime", "config_label", "config_hash", "seed", "status", "metric", "value", "eval_set",
          "path")


def export_rows(table: RunTable) -> list[dict[str, object]]:
    """One row per (run, stored metric); a failed run gives one row with an empty metric."""
    rows = []
    for task in table.tasks():
        for e in task_entities(table.runs, task):
            for run in e.runs:
                base = {"task": task, "method": e.method, "kind": e.kind, "regime": e.regime, "config_label": e.config_label,
                        "config_hash": e.config_hash, "seed": run.seed, "status": run.status, "path": str(run.path)}
                if not run.ok:
                    rows.append({**base, "metric": "", "value": "", "eval_set": ""})
                for metric in sorted(run.metrics):
                    prefix = metric.split("/", 1)[0]
                    rows.append({**base, "metric": metric, "value": repr(float(run.metrics[metric])),
                                 "eval_set": run.eval_set.get(prefix, "")})
    return rows


def export_csv(table: RunTable) -> str:
    """The tidy CSV text."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(export_rows(table))
    return buf.getvalue()


def cli_export(args: argparse.Namespace) -> int:
    """Write (or print) the tidy CSV of every valid run under --results-dir."""
    root = Path(args.results_dir)
    if args.out:
        check_output_path(Path(args.out), "--out", root)
    text = export_csv(load_table(root))
    if not args.out:
        sys.stdout.write(text)
        return 0
    atomic_write_text(Path(args.out), text)
    print(f"wrote {args.out} ({text.count(chr(10)) - 1} rows)")
    return 0
