"""Training of the shared heads and the method's parameters, with atomic epoch checkpoints for resume."""

from __future__ import annotations

import copy
import io
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from pmrl_bench.data.features import ModalityFeatures, SplitFeatures
from pmrl_bench.files import atomic_write_bytes
from pmrl_bench.train.curve import grad_norm, pair_cosines, probe_rows
from pmrl_bench.train.heads import ProjectionHeads
from pmrl_bench.train.method import Method

LOG = logging.getLogger(__name__)


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or Inf (or a solver met such values); `step` is the 1-based optimisation step where it happened."""

    def __init__(self, step: int, value: float, message: str = ""):
        super().__init__(message or f"non-finite loss {value} at step {step}")
        self.step = step


@dataclass
class TrainOutcome:
    """What training reports back: steps, last epoch's mean loss, resume point, curve and the selected epoch."""

    steps: int
    epochs: int
    final_loss: float
    resumed_from_epoch: int
    train_s: float
    curve: list[dict[str, Any]]
    selected_epoch: int
    val_score: float | None
    val_s: float


class RowSampler:
    """Draws one feature row per item for a modality that may have several rows per item (captions)."""

    def __init__(self, feats: ModalityFeatures, n_items: int):
        order = torch.argsort(feats.item_index, stable=True)
        counts = torch.bincount(feats.item_index, minlength=n_items)
        if bool((counts == 0).any()):
            missing = int((counts == 0).sum())
            raise ValueError(f"{missing} training items have no row in this modality")
        self.order = order
        self.counts = counts
        self.offsets = torch.cumsum(counts, 0) - counts
        self.single = bool((counts == 1).all())

    def rows(self, items: Tensor, generator: torch.Generator) -> Tensor:
        """Row indices for `items`, uniformly among each item's rows."""
        if self.single:
            return self.order[items]
        u = torch.rand(len(items), generator=generator)
        pick = (u * self.counts[items]).long().clamp_max(self.counts[items] - 1)
        return self.order[self.offsets[items] + pick]


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _param_groups(heads: ProjectionHeads, method: Method, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weight matrices only; biases and scalars (temperatures, logit scales) are not decayed."""
    params = [p for p in [*heads.parameters(), *method.parameters()] if p.requires_grad]
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


CHECKPOINT_KEYS = frozenset({"run_id", "epoch", "step", "heads", "method", "optimizer", "generator", "torch_rng",
                             "curve", "best"})


def _snapshot(heads: ProjectionHeads, method: Method) -> dict[str, dict[str, Tensor]]:
    """A detached copy of the heads' and the method's state (the best-so-far epoch)."""
    return {
        "heads": {k: v.detach().clone() for k, v in heads.state_dict().items()},
        "method": {k: v.detach().clone() for k, v in method.state_dict().items()},
    }


def load_checkpoint(path: Path | None, run_id: str, epochs: int) -> tuple[dict[str, Any] | None, str]:
    """The checkpoint at `path` if it is one of run `run_id` (tensors and plain values only), else why not."""
    if path is None or not path.exists():
        return None, ""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # damaged, a pickle with code, not a checkpoint at all
        return None, f"unloadable ({type(exc).__name__})"
    if not isinstance(state, dict) or set(state) != CHECKPOINT_KEYS:
        return None, "not a checkpoint of this project (wrong structure)"
    if state["run_id"] != run_id:
        return None, f"belongs to run {state['run_id']!r}"
    epoch, step = state["epoch"], state["step"]
    if not (isinstance(epoch, int) and isinstance(step, int) and 0 < epoch <= epochs and step >= epoch):
        return None, f"impossible epoch {epoch!r} / step {step!r} for {epochs} epochs"
    return state, ""


def _resume(state: dict[str, Any], heads: ProjectionHeads, method: Method, optimizer: torch.optim.Optimizer,
            generator: torch.Generator) -> str:
    """Load a checkpoint into the run's objects; on any mismatch restore them untouched and say why."""
    saved = [copy.deepcopy(m.state_dict()) for m in (heads, method, optimizer)]
    saved_gen, saved_rng = generator.get_state(), torch.get_rng_state()
    try:
        for module, key in ((heads, "heads"), (method, "method")):
            own = module.state_dict()
            theirs = state[key]
            if set(theirs) != set(own) or any(tuple(theirs[k].shape) != tuple(v.shape) for k, v in own.items()):
                raise ValueError(f"{key} parameters do not match this run's shapes")
            module.load_state_dict(theirs)
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
    except Exception as exc:
        for target, value in zip((heads, method, optimizer), saved, strict=True):
            target.load_state_dict(value)
        generator.set_state(saved_gen)
        torch.set_rng_state(saved_rng)
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ""


def log_line(msg: str) -> None:
    """One progress line in the log."""
    LOG.info(msg)


def train(
    method: Method,
    heads: ProjectionHeads,
    split: SplitFeatures,
    cfg: dict[str, Any],
    seed: int,
    run_id: str,
    device: str = "cpu",
    checkpoint_path: Path | None = None,
    log: Callable[[str], None] = log_line,
    label: str = "",
    val_score: Callable[[], float] | None = None,
) -> TrainOutcome:
    """Train `heads` and `method` on `split` with AdamW; checkpoint at every epoch end; resume if possible.

    With `cfg["select"] == "best_val"`, `val_score()` (the validation primary metric, higher is better) is
    evaluated after every epoch and the heads and method end in the state of the best epoch (ties: the
    earlier one); with "last" it is not evaluated and the last epoch's state is kept.
    """
    select_best = cfg.get("select", "best_val") == "best_val" and val_score is not None
    modalities = [m for m in method.modalities if m in split.modalities]
    values = {m: split.modalities[m].values.to(device) for m in modalities}
    samplers = {m: RowSampler(split.modalities[m], split.n_items) for m in modalities}
    optimizer = torch.optim.AdamW(_param_groups(heads, method, cfg["weight_decay"]), lr=cfg["lr"])
    generator = torch.Generator().manual_seed(seed)
    n, bs = split.n_items, cfg["batch_size"]
    steps_per_epoch = max(1, n // bs)  # drop the last partial batch: contrastive losses need full batches
    max_steps = cfg.get("max_steps") or math.inf
    probe = {m: x.to(device) for m, x in probe_rows(split, modalities, cfg.get("curve_subset", 512)).items()}

    start_epoch, step = 0, 0
    curve: list[dict[str, Any]] = []
    best: dict[str, Any] = {"epoch": 0, "score": -math.inf, "state": None}
    state, why = load_checkpoint(checkpoint_path, run_id, cfg["epochs"])
    if state is not None:
        why = _resume(state, heads, method, optimizer, generator)
    if why:
        LOG.warning("%s ignoring checkpoint %s: %s; training starts over", label, checkpoint_path, why)
    elif state is not None:
        start_epoch, step = state["epoch"], state["step"]
        curve, best = list(state["curve"]), dict(state["best"])
        log(f"{label} resumed from checkpoint at epoch {start_epoch} (step {step})")

    t0 = time.perf_counter()
    val_s = 0.0
    heads.train()
    method.train()
    mean_loss = float("nan")
    epoch = start_epoch
    for epoch in range(start_epoch + 1, cfg["epochs"] + 1):
        if step >= max_steps:
            epoch -= 1
            break
        te = time.perf_counter()
        perm = torch.randperm(n, generator=generator)
        total, count = 0.0, 0
        terms: dict[str, Tensor] = {}
        gnorm = torch.zeros((), dtype=torch.float64)
        for b in range(steps_per_epoch):
            if step >= max_steps:
                break
            items = perm[b * bs : (b + 1) * bs]
            batch = {m: values[m][samplers[m].rows(items, generator).to(device)] for m in modalities}
            step += 1
            try:
                loss = method.loss(heads(batch))
            except torch.linalg.LinAlgError as exc:  # a solver that met NaN/Inf (or degenerate) values
                first = (str(exc).strip().splitlines() or [""])[0]
                raise NonFiniteLoss(step, float("nan"), f"linear algebra failed at step {step} ({first})") from None
            value = float(loss.detach())
            if not math.isfinite(value):
                raise NonFiniteLoss(step, value)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = gnorm + grad_norm(heads).double().cpu()
            optimizer.step()
            total, count = total + value, count + 1
            for k, v in method.last_terms.items():
                terms[k] = terms.get(k, 0.0) + v.double().cpu()
        mean_loss = total / max(count, 1)
        point: dict[str, Any] = {
            "epoch": epoch,
            "loss": mean_loss,
            **{k: float(v) / max(count, 1) for k, v in terms.items()},
            **method.diagnostics(),
            "grad_norm": float(gnorm) / max(count, 1),
        }
        heads.eval()
        method.eval()
        point.update(pair_cosines(heads, probe))
        if select_best:
            tv = time.perf_counter()
            point["val"] = float(val_score())
            val_s += time.perf_counter() - tv
            if point["val"] > best["score"]:
                best = {"epoch": epoch, "score": point["val"], "state": _snapshot(heads, method)}
        heads.train()
        method.train()
        curve.append(point)
        extra = "".join(f" {k} {v:.4g}" for k, v in method.diagnostics().items())
        shown = f" val {point['val']:.2f}" if "val" in point else ""
        log(f"{label} epoch {epoch}/{cfg['epochs']} loss {mean_loss:.4f}{extra}{shown} "
            f"({time.perf_counter() - te:.2f} s)")
        if checkpoint_path is not None:
            _save_checkpoint(
                checkpoint_path,
                {
                    "run_id": run_id,
                    "epoch": epoch,
                    "step": step,
                    "heads": heads.state_dict(),
                    "method": method.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "generator": generator.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "curve": curve,
                    "best": best,
                },
            )
    heads.eval()
    method.eval()
    selected = epoch
    if select_best and best["state"] is not None:
        heads.load_state_dict(best["state"]["heads"])
        method.load_state_dict(best["state"]["method"])
        selected = int(best["epoch"])
    return TrainOutcome(
        steps=step,
        epochs=epoch,
        final_loss=mean_loss,
        resumed_from_epoch=start_epoch,
        train_s=time.perf_counter() - t0,
        curve=curve,
        selected_epoch=selected,
        val_score=best["score"] if select_best and best["state"] is not None else None,
        val_s=val_s,
    )
