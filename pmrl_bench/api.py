"""The Python API: run methods, load result records as a table, build the leaderboard's tables (docs/plugins.md).

Importing this module is light: torch, pandas and the statistics are imported when a function is called.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pmrl_bench.errors import BenchError

if TYPE_CHECKING:
    import pandas as pd

    from pmrl_bench.results.record import RunResult


def _override_list(overrides: Mapping[str, Any] | Sequence[tuple[str, Any]] | None) -> list[tuple[str, Any]]:
    if overrides is None:
        return []
    return list(overrides.items()) if isinstance(overrides, Mapping) else [tuple(o) for o in overrides]


def evaluate(
    method: str | type,
    task: str = "synthetic",
    seeds: Sequence[int] = (0,),
    overrides: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
    results_dir: str | Path | None = None,
    device: str = "cpu",
    force: bool = False,
) -> list[RunResult]:
    """Train and evaluate `method` on `task` for each seed and return the records (files only with `results_dir`).

    `method` is a registered name or a class registered with `@register_method`; `overrides` maps settings
    to values as `--set` does (e.g. {"epochs": 5, "tau1": 0.1}). With `results_dir`, a run whose record
    exists is read back, not re-run (unless `force`).
    """
    from pmrl_bench.plan import RunRequest
    from pmrl_bench.runner import execute

    name = method if isinstance(method, str) else getattr(method, "name", "")
    if not name:
        raise BenchError(f"{method!r} is not a registered method (decorate it with @register_method(\"name\"))")
    pairs = _override_list(overrides)
    with tempfile.TemporaryDirectory(prefix="pmrl-bench-") as scratch:
        target = str(results_dir) if results_dir is not None else scratch
        return [
            execute(RunRequest(task=task, method=name, seed=seed, overrides=pairs, results_dir=target,
                               device=device, force=force or results_dir is None))
            for seed in seeds
        ]


def _records(results_dir: Path) -> list[RunResult]:
    from pydantic import ValidationError

    from pmrl_bench.results.record import RunResult, iter_result_files

    records = []
    for path in iter_result_files(results_dir):
        try:
            records.append(RunResult.model_validate_json(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, ValidationError) as exc:
            warnings.warn(f"skipping {path}: {str(exc).splitlines()[0]}", stacklevel=3)
    return records


def results_frame(records: Sequence[RunResult]) -> pd.DataFrame:
    """One row per (record, metric): task, method, config_label, regime, config_hash, seed, run_id, status, metric,
    value (regime: the evaluation regime, derived from the config for records written before it was recorded)."""
    import pandas as pd

    from pmrl_bench.results.labels import regime_label

    columns = ["task", "method", "config_label", "regime", "config_hash", "seed", "run_id", "status", "metric",
               "value"]
    rows = [
        (r.task, r.method, getattr(r, "config_label", None),
         r.regime if r.regime is not None else regime_label(r.config.get("evaluation")), r.config_hash, r.seed,
         r.run_id, r.status, key, value)
        for r in records
        for key, value in r.metrics.items()
    ]
    return pd.DataFrame(rows, columns=columns)


def load_results(results_dir: str | Path = "results") -> pd.DataFrame:
    """Every record under `results_dir` as a long table (see `results_frame`); unreadable files are warned about."""
    root = Path(results_dir)
    if not root.is_dir():
        raise BenchError(f"{root} is not a folder of result records")
    return results_frame(_records(root))


def leaderboard(
    results_dir: str | Path = "results", correction: str = "holm", config: Mapping[str, str] | None = None
) -> dict[str, pd.DataFrame]:
    """The leaderboard's tables: task -> one row per (method, config) with value, ± half-width and mark per column.

    `config` picks one config hash per method as `--config METHOD=HASH` does. The extra key "ranking"
    holds the mean rank of each method across tasks (empty with fewer than two ranked methods).
    """
    import pandas as pd

    from pmrl_bench.report.leaderboard import _row_order, build_leaderboard, rank_methods
    from pmrl_bench.results.table import check_config_choices, load_runs

    root = Path(results_dir)
    table = load_runs(root) if root.is_dir() else None
    if table is None or not table.runs:
        raise BenchError(f"no valid result files under {root}/")
    choices = dict(config or {})
    check_config_choices(table.runs, choices)
    board = build_leaderboard(table, choices, correction, warn=lambda message: warnings.warn(message, stacklevel=3))
    out: dict[str, pd.DataFrame] = {}
    for tt in board.tables:
        columns = [c for c in tt.layout.columns if c in tt.cells]
        rows = []
        for entity in _row_order(tt):
            row: dict[str, Any] = {"method": entity.label, "config_hash": entity.config_hash,
                                   "n_ok": sum(r.ok for r in entity.runs), "n_runs": len(entity.runs)}
            for c in columns:
                stats = tt.cells[c].get(entity.key)
                row[c] = stats.value if stats else None
                row[f"{c} ±"] = stats.half_width if stats else None
                row[f"{c} mark"] = tt.marks[c].get(entity.key, "")
            rows.append(row)
        out[tt.layout.task] = pd.DataFrame(rows)
    ranking = rank_methods(board.suite_tables)
    out["ranking"] = pd.DataFrame({"method": ranking.methods, "mean_rank": list(ranking.mean_ranks)})
    return out
