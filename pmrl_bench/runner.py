"""One run = (task, method, resolved config, seed): load features, train, evaluate, write the record."""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import hashlib
import json
import logging
import os
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pmrl_bench.config import config_label, parse_overrides
from pmrl_bench.data.features import SplitFeatures, first_items, first_queries
from pmrl_bench.errors import BenchError, EnvironmentFailure
from pmrl_bench.plan import PlannedRun, RunRequest, check_results_dir, checkpoint_path, plan_run
from pmrl_bench.results.labels import regime_label
from pmrl_bench.results.record import RunResult, write_result
from pmrl_bench.task import DEFAULT_TASK, load_task

LOG = logging.getLogger(__name__)

INTERRUPTED = threading.Event()
"""Set by a cluster job once the scheduler preempts it or its time runs out. An error raised while it is set
comes from the interruption itself (e.g. the requeue call inside the signal handler), not from the run: it is
re-raised, no failed record is written and the epoch checkpoint stays for the requeued job."""


@lru_cache(maxsize=16)
def _load_split_cached(task: str, data_key: str, role: str, device: str) -> SplitFeatures:
    from pmrl_bench.data.load import load_split

    data = json.loads(data_key)
    return load_split(load_task(task), data, role, device)


def load_features(planned: PlannedRun, role: str, device: str, config: dict[str, Any] | None = None) -> SplitFeatures:
    """Features of one split, shared across the runs of one process (seeds, methods) with the same data."""
    config = config or planned.config
    data = {k: config[k] for k in ("data", "encoders", "validation")}
    return _load_split_cached(planned.spec.name, json.dumps(data, sort_keys=True), role, device)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def execute(req: RunRequest, label: str | None = None) -> RunResult:
    """Train and evaluate one run, write its record atomically and return it (skips a done run unless forced).

    User errors (unknown names, missing data) raise BenchError and write nothing. A NaN/Inf loss or an
    error during training/evaluation writes a `failed` record with the error's first line.
    """
    from pmrl_bench.env import environment
    from pmrl_bench.train.trainer import NonFiniteLoss
    from pmrl_bench.train.warm_start import warm_checkpoint

    planned = plan_run(req)
    if planned.done and not req.force:
        from pmrl_bench.results.record import read_result

        return read_result(planned.path)
    if planned.corrupt and not req.force:
        raise BenchError(corrupt_message(planned))
    spec, config, rid = planned.spec, planned.config, planned.run_id
    check_results_dir(req.results_dir)
    label = label or f"[{req.method} {spec.name} seed {req.seed}]"
    ckpt = checkpoint_path(req.results_dir, rid)
    if os.path.lexists(ckpt) and not ckpt.is_file():
        raise BenchError(f"{ckpt} is not a checkpoint file; remove it and run again")

    env = environment(req.device)
    if req.provenance:
        env["sweep"] = req.provenance
    base = dict(
        run_id=rid, config_hash=planned.config_hash, method=req.method, task=spec.name, seed=req.seed,
        config=config, env=env, task_meta=spec.meta(), limited=req.limit is not None, selection=req.selection,
        config_label=config_label(spec, req.method, config), regime=regime_label(config["evaluation"]),
    )
    folds: list[int | None] = list(spec.folds) or [None]
    parts: list[dict[str, Any]] = []
    try:
        for fold in folds:
            part: dict[str, Any] = {"protocol": {}, "timing": {}}
            parts.append(part)
            fold_config = config if fold is None else {**config, "data": {**config["data"], "fold": fold}}
            fold_ckpt = ckpt if fold is None else fold_checkpoint(ckpt, fold)
            fit_and_test(planned, req, fold_config, fold_ckpt, label if fold is None else f"{label} fold {fold}", part)
        merged = parts[0] if len(parts) == 1 else merge_folds(spec, folds, parts)  # type: ignore[arg-type]
        record = RunResult(**base, status="ok", created_at=_now(), **merged)
    except NonFiniteLoss as exc:
        record = RunResult(**base, status="failed", error=str(exc), failed_step=exc.step, created_at=_now(),
                           **_partial(folds, parts))
    except (BenchError, EnvironmentFailure):
        raise
    except Exception as exc:  # recorded, not raised: one failing run must not stop a sweep
        if INTERRUPTED.is_set():
            raise
        if environmental(exc):  # disk, permissions, memory: not the run's own failure, nothing is recorded
            kept = f"the ok record {planned.path} is kept" if planned.done else "no record was written"
            raise EnvironmentFailure(f"{label} stopped by the environment ({_first_line(exc)}); {kept}; "
                                     "free space or fix permissions and run again") from None
        record = RunResult(**base, status="failed", error=_first_line(exc), created_at=_now(), **_partial(folds, parts))
    if planned.corrupt:
        LOG.warning("%s replacing the corrupt record %s (%s)", label, planned.path, planned.corrupt)
    try:
        write_result(Path(req.results_dir), record)
    except OSError as exc:
        kept = "the earlier record is kept" if os.path.lexists(planned.path) else "no record was written"
        raise EnvironmentFailure(f"{label} cannot write {planned.path} ({_first_line(exc)}); {kept}") from None
    for fold in spec.folds or [None]:
        fold_ckpt = ckpt if fold is None else fold_checkpoint(ckpt, fold)
        fold_ckpt.unlink(missing_ok=True)
        warm_checkpoint(fold_ckpt).unlink(missing_ok=True)
    return record


def fold_checkpoint(ckpt: Path, fold: int) -> Path:
    """The epoch checkpoint of one fold of a cross-validated run."""
    return ckpt.with_name(f"{ckpt.stem}.fold{fold}{ckpt.suffix}")


def fit_and_test(planned: PlannedRun, req: RunRequest, config: dict[str, Any], ckpt: Path, label: str,
                 part: dict[str, Any]) -> None:
    """Load the splits, train, select and test once; fills `part` (protocol and timing as they are known, then
    metrics, per_query, eval_set, train_curve, selected_epoch) so a failure keeps what was recorded so far."""
    from pmrl_bench.evaluation.rerank import check_k
    from pmrl_bench.evaluation.retrieval import evaluate, evaluate_primary
    from pmrl_bench.registry import get_method
    from pmrl_bench.train.heads import ProjectionHeads
    from pmrl_bench.train.trainer import train
    from pmrl_bench.train.warm_start import method_phase, run_warm_start

    spec, protocol, timing = planned.spec, part["protocol"], part["timing"]
    t0 = time.perf_counter()
    train_feats = load_features(planned, "train", req.device, config)
    val_feats = load_features(planned, "val", req.device, config)
    test_feats = load_features(planned, "test", req.device, config)
    if req.limit is not None:  # first N train items; first N test (and validation) queries against the whole gallery
        train_feats, test_feats = first_items(train_feats, req.limit), first_queries(test_feats, req.limit)
        val_feats = first_queries(val_feats, req.limit)
    encode_s = time.perf_counter() - t0
    check_k(config["evaluation"]["rerank"], test_feats.n_items)

    torch.manual_seed(req.seed)
    tcfg = config["train"]
    in_dims = {m: train_feats.modalities[m].dim for m in spec.modalities}
    method = get_method(req.method)(spec.modalities, **config["method_params"])
    try:
        heads = ProjectionHeads(in_dims, tcfg["embed_dim"], tcfg["head_hidden"], tcfg["head_layers"], tcfg["dropout"])
        heads.to(req.device)
        method.to(req.device)
    except (MemoryError, RuntimeError) as exc:
        raise EnvironmentFailure(f"{label} cannot allocate the model ({_first_line(exc)}); nothing was written; "
                                 "use a smaller train.embed_dim / train.head_hidden") from None

    protocol.update({
        "train": train_feats.info, "test": test_feats.info, "caption_policy": {
            role: feats.info.get("caption_policy", spec.caption_policy.get(role))
            for role, feats in (("train", train_feats), ("test", test_feats))
        },
        "method": method.protocol(), "seeds_affect": "head initialisation and batch order",
    })
    timing["encode_s"] = encode_s

    def val_score() -> float:
        out = evaluate_primary(spec, method, heads, train_feats, val_feats, req.device)
        protocol["val"].update(eval_set=out.eval_set, n_queries={
            p: v["n_queries"] for p, v in out.protocol.items() if isinstance(v, dict) and "n_queries" in v})
        return out.metrics[spec.selection_metric]

    protocol["val"] = {**val_feats.info, "n_items": val_feats.n_items}
    if tcfg["warm_start"] is not None:
        warm, warm_out = run_warm_start(spec.modalities, heads, train_feats, tcfg, req.seed, planned.run_id, req.device,
                                        ckpt, label=label)
        warm_eval = evaluate(spec, warm, heads, train_feats, test_feats, req.seed, req.device, val=val_feats)
        warm_val = evaluate_primary(spec, warm, heads, train_feats, val_feats, req.device)
        protocol["warm_start"] = {**tcfg["warm_start"], "steps": warm_out.steps, "test_metrics": warm_eval.metrics,
                                  "per_query": warm_eval.per_query, "eval_set": warm_eval.eval_set,
                                  "val_metrics": warm_val.metrics}
    outcome = train(method, heads, train_feats, method_phase(tcfg), req.seed, planned.run_id, req.device, ckpt,
                    label=label, val_score=val_score)
    timing.update(train_s=outcome.train_s, val_s=outcome.val_s)
    protocol.update(train_steps=outcome.steps, resumed_from_epoch=outcome.resumed_from_epoch)
    protocol["select"] = {"rule": tcfg["select"], "metric": spec.selection_metric, "val_score": outcome.val_score,
                          "selected_epoch": outcome.selected_epoch}
    if spec.select_on is not None:
        protocol["select"]["why"] = spec.select_on.why
    part.update(train_curve=outcome.curve, selected_epoch=outcome.selected_epoch)
    t1 = time.perf_counter()
    out = evaluate(spec, method, heads, train_feats, test_feats, req.seed, req.device, config["evaluation"],
                   val=val_feats)
    timing["eval_s"] = time.perf_counter() - t1
    protocol.update(out.protocol)
    part.update(metrics=out.metrics, per_query=out.per_query, eval_set=out.eval_set)


POOLING = ("one run trains and tests once per fold (the adapter argument `fold`); per-query outcomes are "
           "concatenated in fold order and the metrics computed over all of them (the mean over folds when the "
           "folds have the same size); per-fold metrics and their unweighted mean under protocol.cross_validation")


def merge_folds(spec: Any, folds: list[int], parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One record's fields from the per-fold parts of a cross-validated run (see POOLING)."""
    from pmrl_bench.metrics import CORRECT, compute_metrics

    first = parts[0]
    per_query = {key: [v for p in parts for v in p["per_query"][key]] for key in first["per_query"]}
    metrics = {}
    for key in first["metrics"]:
        prefix, name = key.rsplit("/", 1)
        outcome = per_query.get(f"{prefix}/correct")
        metrics[key] = (compute_metrics([name], CORRECT, np.asarray(outcome))[name] if outcome is not None
                        else float(np.mean([p["metrics"][key] for p in parts])))
    eval_set = {prefix: hashlib.sha256("\n".join(p["eval_set"][prefix] for p in parts).encode()).hexdigest()
                for prefix in first["eval_set"]}
    protocol = {key: value for key, value in first["protocol"].items() if key in ("method", "seeds_affect")}
    for prefix in spec.prefixes:
        if isinstance(first["protocol"].get(prefix), dict):
            protocol[prefix] = {**first["protocol"][prefix], "n_test": len(per_query.get(f"{prefix}/correct", [])),
                                "per_fold": {str(f): p["protocol"][prefix] for f, p in zip(folds, parts, strict=True)}}
    protocol["cross_validation"] = {
        "folds": folds, "pooling": POOLING,
        "metrics_per_fold": {str(f): p["metrics"] for f, p in zip(folds, parts, strict=True)},
        "mean_over_folds": {key: float(np.mean([p["metrics"][key] for p in parts])) for key in first["metrics"]},
    }
    protocol["folds"] = {str(f): {k: v for k, v in p["protocol"].items() if k not in spec.prefixes}
                         for f, p in zip(folds, parts, strict=True)}
    timing = {key: float(sum(p["timing"].get(key, 0.0) for p in parts)) for key in first["timing"]}
    return {"metrics": metrics, "per_query": per_query, "eval_set": eval_set, "protocol": protocol, "timing": timing,
            "train_curve": mean_curve([p["train_curve"] for p in parts]), "selected_epoch": None}


def mean_curve(curves: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Epoch-wise mean over folds of the numeric entries every fold's curve has at that epoch."""
    out = []
    for rows in zip(*curves, strict=False):
        keys = set.intersection(*(set(r) for r in rows))
        out.append({k: float(np.mean([r[k] for r in rows])) if k != "epoch" else rows[0][k] for k in sorted(keys)})
    return out


def _partial(folds: list[int | None], parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Protocol and timing of a failed run: as recorded so far (by fold for a cross-validated run)."""
    if len(folds) == 1:
        return {"protocol": parts[0]["protocol"], "timing": parts[0]["timing"]} if parts else {}
    return {"protocol": {"folds": {str(f): p["protocol"] for f, p in zip(folds, parts, strict=False)}},
            "timing": {key: float(sum(p["timing"].get(key, 0.0) for p in parts)) for key in parts[0]["timing"]}}


ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO,
                                errno.EMFILE, errno.ENFILE, errno.ENOMEM})


def environmental(exc: BaseException) -> bool:
    """Whether an error comes from the machine (disk full, permissions, memory), also when wrapped."""
    seen = 0
    while exc is not None and seen < 16:
        if isinstance(exc, MemoryError | torch.OutOfMemoryError):
            return True
        if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def corrupt_message(planned: PlannedRun) -> str:
    """The refusal for a run whose record path holds something that is not a valid record."""
    return (f"{planned.path} is not a valid record ({planned.corrupt}); it is kept: inspect or move it, "
            "or re-run with --force to replace it")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def summary_line(record: RunResult, path: Path) -> str:
    """One line per finished run: status, headline metrics, train time, where the record is."""
    head = f"{record.method} {record.task} seed {record.seed}"
    if record.status != "ok":
        return f"{head}: FAILED ({record.error}) -> {path}"
    metrics = "  ".join(f"{k} {v:.1f}" for k, v in list(record.metrics.items())[:4])
    return f"{head}: {metrics}  (train {record.timing.get('train_s', 0):.1f} s) -> {path}"


def cli_run(args: argparse.Namespace) -> int:
    """`run`: one method on one task for each seed; exit 1 if any run failed."""
    overrides = parse_overrides(args.overrides)
    failed = 0
    for seed in args.seeds:
        req = RunRequest(task=args.task or DEFAULT_TASK, method=args.method, seed=seed, overrides=overrides,
                         results_dir=args.results_dir, device=args.device, force=args.force, limit=args.limit)
        planned = plan_run(req)
        if planned.done and not args.force:
            LOG.info("skip: %s exists (run_id %s; use --force to re-run)", planned.path, planned.run_id)
            continue
        if planned.corrupt and not args.force:
            raise BenchError(corrupt_message(planned))
        record = execute(req)
        print(summary_line(record, planned.path))
        failed += record.status != "ok"
    return 1 if failed else 0
