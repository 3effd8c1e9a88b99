"""Planning a run without torch: the request, its resolved config and identity, and where its record goes.

`sweep`, `status` and the cluster controller import only this module; `pmrl_bench.runner` (which
imports torch) executes the plans.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from pmrl_bench.config import config_hash, resolve_config, run_id
from pmrl_bench.errors import BenchError
from pmrl_bench.results.record import existing_state, result_path
from pmrl_bench.task import DEFAULT_TASK, TaskSpec, load_task


class RunRequest(BaseModel):
    """A plain, JSON-serialisable description of one run (what a cluster job receives)."""

    model_config = ConfigDict(extra="forbid")

    task: str = DEFAULT_TASK
    method: str
    seed: int = 0
    overrides: list[tuple[str, Any]] = []
    results_dir: str = "results"
    device: str = "cpu"
    force: bool = False
    provenance: dict[str, Any] = {}
    limit: int | None = None
    selection: dict[str, Any] | None = None
    """Set on the final runs of `tune`: how the configuration was chosen (see `pmrl_bench.tune`)."""


SELECTION_IDENTITY = ("space_hash", "seeds", "rule")


@dataclass(frozen=True)
class PlannedRun:
    """A request resolved to its config, identity and result path, before anything is computed."""

    request: RunRequest
    spec: TaskSpec
    config: dict[str, Any]
    run_id: str
    config_hash: str
    path: Path
    done: bool
    corrupt: str = ""  # why the file at `path` is not a valid record ("" when there is none or it is valid)


def check_device(device: str) -> None:
    """Refuse a device this machine does not have, in one line (imports torch only for a CUDA device)."""
    if not (device == "cpu" or device.startswith("cuda")):
        raise BenchError(f"--device {device}: expected cpu, cuda or cuda:N")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise BenchError(f"--device {device}: no CUDA device is available here; use --device cpu")


def check_results_dir(path: str | Path) -> None:
    """Create the results folder and make sure a file can be written there, before any training."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise BenchError(f"--results-dir {path}: cannot write there ({exc.strerror or exc})") from None


def plan_run(req: RunRequest) -> PlannedRun:
    """Resolve a request's config and identity, and whether a valid ok result already exists."""
    check_device(req.device)
    spec = load_task(req.task)
    config = resolve_config(spec, req.method, req.overrides)
    if req.limit is not None:  # part of the identity: a quick check never takes the place of the full run
        config["limit"] = req.limit
    if req.selection is not None:  # a tuned run is its own entity: the same settings chosen by hand are another
        config["selection"] = {k: req.selection[k] for k in SELECTION_IDENTITY}
    rid = run_id(config, req.seed)
    path = result_path(Path(req.results_dir), spec.name, req.method, rid)
    state, reason = existing_state(path)
    return PlannedRun(
        request=req,
        spec=spec,
        config={**config, "seed": req.seed},
        run_id=rid,
        config_hash=config_hash(config),
        path=path,
        done=state == "ok",
        corrupt=reason,
    )


def checkpoint_path(results_dir: str | Path, rid: str) -> Path:
    """Where a run's epoch checkpoint lives while it trains (removed when the record is written)."""
    return Path(results_dir) / ".checkpoints" / f"{rid}.pt"
