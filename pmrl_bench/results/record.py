"""The result record (one JSON file per run), its schema, writing and loading."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pmrl_bench.files import atomic_write_text
from pmrl_bench.safeio import UnsafeFile, read_bytes

SCHEMA_VERSION = 2
CURVE_KEYS = ("epoch", "loss", "grad_norm")  # every curve point has these; loss terms, diagnostics, cosines, val vary


class TaskMeta(BaseModel):
    """What the leaderboard needs from the task, copied into every record so no task file is needed to rank it."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(description="task version the run was made with")
    primary_metric: str = Field(description="'<prefix>/<metric>' that orders tables and the cross-task ranking")
    metrics: list[str] = Field(description="bare metric names of the task, in column order")
    prefixes: list[str] = Field(description="metric prefixes in column order")
    directions: dict[str, Literal["higher", "lower"]] = Field(description="metric -> which way is better")
    query_group: str | None = Field(None, description="what a query group is, when queries are grouped")


class RunResult(BaseModel):
    """One run of one method on one task with one seed (results/<task>/<method>/<run_id>.json)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = Field(SCHEMA_VERSION, description="version of this record's layout")
    run_id: str = Field(description="hash of the resolved config including the seed")
    config_hash: str = Field(description="hash of the resolved config without the seed")
    method: str = Field(description="registered method name")
    task: str = Field(description="task name (tasks/<task>.yaml)")
    seed: int = Field(description="seed of head initialisation and batch order")
    status: Literal["ok", "failed"] = Field(description="ok, or failed with `error` set")
    error: str | None = Field(None, description="first line of the failure, when failed")
    failed_step: int | None = Field(None, description="training step at which a non-finite loss appeared")
    config: dict[str, Any] = Field(description="fully resolved configuration")
    metrics: dict[str, float] = Field(default_factory=dict, description="'<prefix>/<metric>' -> value")
    per_query: dict[str, list[int]] = Field(
        default_factory=dict,
        description="'<prefix>/rank' (1-based rank of the first relevant candidate) or '<prefix>/correct' (0/1); "
        "'<prefix>/group' (item index of each query) when the task declares query_group",
    )
    eval_set: dict[str, str] = Field(
        default_factory=dict,
        description="prefix -> sha256 of ordered query ids, '#', ordered candidate ids",
    )
    protocol: dict[str, Any] = Field(default_factory=dict, description="split, sizes, caption policy, score, tie rule")
    timing: dict[str, float] = Field(default_factory=dict, description="train_s, eval_s, encode_s")
    env: dict[str, Any] = Field(default_factory=dict, description="python, torch, device, host, git commit, versions, "
                                "torch threads, compile (whether --compile asked for compiled score kernels)")
    created_at: str = Field(description="UTC ISO-8601 time the record was written")
    task_meta: TaskMeta | None = Field(None, description="the task's version, primary metric and directions")
    limited: bool = Field(False, description="a --limit quick check on the first items only (kept off leaderboards)")
    train_curve: list[dict[str, float | int]] = Field(
        default_factory=list,
        description="one point per epoch: epoch, loss, each loss term the method reports (L_*), its diagnostics "
        "(temperature, sigma1), grad_norm (heads), cos_pos/<a>-<b> and cos_neg/<a>-<b> on a fixed train subset, "
        "val (validation primary metric, when select=best_val)",
    )
    selected_epoch: int | None = Field(None, description="epoch whose state was tested (best_val, or the last)")
    selection: dict[str, Any] | None = Field(
        None, description="when tuned on validation: space_hash, n_configs, chosen, val_score, seeds, rule"
    )
    config_label: str | None = Field(
        None, description="settings that differ from the defaults, e.g. 'tau1=0.5, tau2=0.03' ('' = defaults)"
    )
    regime: str | None = Field(
        None, description="evaluation regime from config.evaluation, e.g. 'rerank@50, robustness vision' ('' = plain); "
        "None in records written before it: derived from config.evaluation"
    )

    @field_validator("train_curve")
    @classmethod
    def _curve_points(cls, curve: list[dict[str, float | int]]) -> list[dict[str, float | int]]:
        for i, point in enumerate(curve):
            missing = [k for k in CURVE_KEYS if k not in point]
            if missing:
                raise ValueError(f"train_curve[{i}] lacks {missing}")
            if point["epoch"] != curve[0]["epoch"] + i:
                raise ValueError(f"train_curve[{i}] has epoch {point['epoch']}: epochs must be consecutive")
        return curve


def result_path(results_dir: Path, task: str, method: str, run_id: str) -> Path:
    """Where the record of a run lives."""
    return Path(results_dir) / task / method / f"{run_id}.json"


def write_result(results_dir: Path, record: RunResult) -> Path:
    """Write a record to its canonical path atomically and return the path."""
    path = result_path(results_dir, record.task, record.method, record.run_id)
    text = json.dumps(non_finite_as_strings(record.model_dump()), indent=1, sort_keys=False, allow_nan=False)
    atomic_write_text(path, text + "\n")
    return path


def non_finite_as_strings(obj: Any) -> Any:
    """`obj` with every inf/nan float written as "inf", "-inf" or "nan" (JSON has no such numbers; null would
    lose what ran)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: non_finite_as_strings(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [non_finite_as_strings(v) for v in obj]
    return obj


def iter_result_files(results_dir: Path) -> Iterator[Path]:
    """Every result file under results_dir (results/<task>/<method>/*.json), sorted; temp files skipped."""
    root = Path(results_dir)
    if not root.is_dir():
        return
    for path in sorted(root.glob("*/*/*.json")):
        if not path.name.startswith("."):
            yield path


def read_result(path: Path) -> RunResult:
    """Parse and validate one result file (raises ValueError or OSError on a bad file; never hangs)."""
    return RunResult.model_validate_json(read_bytes(path))


def existing_state(path: Path) -> tuple[str, str]:
    """What is at a run's record path: ("missing"|"ok"|"failed"|"corrupt", reason when corrupt)."""
    if not os.path.lexists(path):
        return "missing", ""
    try:
        return read_result(path).status, ""
    except (ValueError, OSError) as exc:
        return "corrupt", corrupt_reason(exc)


def corrupt_reason(exc: Exception) -> str:
    """One line saying why a file is not a valid record."""
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return f"{where + ': ' if where else ''}{err['msg']}"
    if isinstance(exc, OSError) and not isinstance(exc, UnsafeFile):
        return f"unreadable ({exc.strerror or exc})"
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
