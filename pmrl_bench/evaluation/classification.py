"""Classification evaluator: a linear probe on frozen trained embeddings, or zero-shot through class prompts.

Both protocols classify every feature row of the input modality of the test split (one row per item for
media; one per caption for text), with the item's label as the target.

* `linear_probe`: multinomial logistic regression on the L2-normalised head outputs, fitted with
  full-batch L-BFGS (float64, zero initialisation: deterministic); the L2 penalty is picked from
  `PROBE_L2_GRID` by `PROBE_FOLDS`-fold cross-validation on the training split (folds drawn with the
  run's seed), then the probe is refitted on the whole training split.
* `zero_shot`: `method.similarity` between the input rows (query) and the head outputs of the class
  prompts (candidates); the best-scoring class is the prediction (ties: the lowest class index).

Class prompts. The prompt texts (`spec.prompt` with `{label}` filled by each class name, in the order of
`label_names`) are encoded by the task's encoder of `spec.prompt_modality`, through the feature cache,
by `pmrl_bench.data.prompts.attach_class_prompts`, which `pmrl_bench.data.load.load_split` calls for the test split. The features
travel in the split's `modalities` under the reserved key `prompts:<classification name>` (rows
"class#<label>", item_index = class index): not a modality, so training and retrieval never see them,
while the runner's `embed(prompt_modality, split)` works on them unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pmrl_bench.data.features import SplitFeatures, query_rows
from pmrl_bench.data.prompts import prompt_key
from pmrl_bench.errors import BenchError
from pmrl_bench.metrics import CORRECT, compute_metrics
from pmrl_bench.task import ClassificationSpec
from pmrl_bench.train.method import Method

PROBE_L2_GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
PROBE_FOLDS = 3
PROBE_MAX_ITER = 300
TIE_RULE = "argmax; ties go to the lowest class index"

Embed = Callable[[str, SplitFeatures], Tensor]


def eval_set_digest(row_ids: Sequence[str], label_names: Sequence[str]) -> str:
    """sha256 of the test row ids joined by newlines, a line '#', then the class names joined by newlines."""
    text = "\n".join(row_ids) + "\n#\n" + "\n".join(label_names)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _row_labels(split: SplitFeatures, modality: str, name: str) -> Tensor:
    if split.labels is None or not split.label_names:
        raise BenchError(f"classification {name!r}: split {split.split!r} has no class labels")
    if modality not in split.modalities:
        raise BenchError(f"classification {name!r}: split {split.split!r} has no modality {modality!r}")
    return split.labels[split.modalities[modality].item_index]


def _normalise(x: Tensor) -> Tensor:
    return torch.nn.functional.normalize(x.detach().to(torch.float64), dim=1)


def fit_logistic(x: Tensor, y: Tensor, n_classes: int, l2: float, max_iter: int = PROBE_MAX_ITER) -> tuple[Tensor, Tensor]:
    """(W [D, C], b [C]) minimising mean cross-entropy + l2/2 * ||W||^2; full-batch L-BFGS from zeros."""
    x = x.to(torch.float64)
    weight = torch.zeros(x.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9,
                            tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight + bias, y) + 0.5 * l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return weight.detach(), bias.detach()


def predict(weight: Tensor, bias: Tensor, x: Tensor) -> Tensor:
    """Class index per row (ties: lowest index)."""
    return torch.argmax(x.to(torch.float64) @ weight + bias, dim=1)


def choose_l2(x: Tensor, y: Tensor, n_classes: int, seed: int, grid: Sequence[float] = PROBE_L2_GRID,
              folds: int = PROBE_FOLDS) -> tuple[float, list[float]]:
    """The L2 penalty with the best held-out accuracy over seeded folds (ties: the stronger penalty).

    One probe per (penalty, fold): len(grid) * folds small convex fits (tens of milliseconds each)."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    fold_of = torch.empty(len(y), dtype=torch.long)
    fold_of[order] = torch.arange(len(y)) % folds
    scores = []
    for l2 in grid:
        hits = 0
        for f in range(folds):
            held = fold_of == f
            w, b = fit_logistic(x[~held], y[~held], n_classes, l2)
            hits += int((predict(w, b, x[held]) == y[held]).sum())
        scores.append(100.0 * hits / len(y))
    best = max(range(len(grid)), key=lambda i: (scores[i], grid[i]))
    return float(grid[best]), scores


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside the block: on probe-sized matrices thread hand-offs cost more than the
    arithmetic (measured 10-50x slower with 2 threads on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def linear_probe(embed: Embed, train: SplitFeatures, test: SplitFeatures, spec: ClassificationSpec,
                 seed: int) -> tuple[Tensor, dict[str, Any]]:
    """Per-row correctness of a logistic-regression probe fitted on the training split, and its settings."""
    n_classes = len(train.label_names)
    if tuple(test.label_names) != tuple(train.label_names):
        raise BenchError(f"classification {spec.name!r}: train and test splits name different classes")
    x_train = _normalise(embed(spec.input, train))
    y_train = _row_labels(train, spec.input, spec.name)
    with single_thread():
        l2, cv_acc = choose_l2(x_train, y_train, n_classes, seed)
        weight, bias = fit_logistic(x_train, y_train, n_classes, l2)
    pred = predict(weight, bias, _normalise(embed(spec.input, test)))
    settings = {"features": "L2-normalised head outputs", "solver": "full-batch L-BFGS (float64, zero init)",
                "max_iter": PROBE_MAX_ITER, "l2_grid": list(PROBE_L2_GRID), "cv_folds": PROBE_FOLDS,
                "cv_acc": cv_acc, "l2": l2, "n_train": len(y_train)}
    return pred == _row_labels(test, spec.input, spec.name), settings


def zero_shot(method: Method, embed: Embed, test: SplitFeatures, spec: ClassificationSpec) -> tuple[Tensor, dict[str, Any]]:
    """Per-row correctness of the best-scoring class prompt under the method's similarity."""
    prompts = test.modalities.get(prompt_key(spec))
    if prompts is None:
        raise BenchError(f"zero-shot {spec.name!r}: the test split carries no class-prompt features "
                         "(pmrl_bench.data.prompts.attach_class_prompts adds them)")
    prompt_split = SplitFeatures(split="class_prompts", item_ids=tuple(test.label_names),
                                 modalities={spec.prompt_modality: prompts})
    with torch.no_grad():
        candidates = {spec.prompt_modality: embed(spec.prompt_modality, prompt_split)}
        query = embed(spec.input, test)
        scores = torch.cat([method.similarity({spec.input: query[i : i + 4096]}, candidates)
                            for i in range(0, len(query), 4096)])
    if scores.shape != (len(query), len(test.label_names)):
        raise RuntimeError(f"similarity returned shape {tuple(scores.shape)}, expected {(len(query), len(test.label_names))}")
    settings = {"prompt": spec.prompt, "prompt_modality": spec.prompt_modality, "score": "method.similarity"}
    return scores.argmax(dim=1).cpu() == _row_labels(test, spec.input, spec.name), settings


def evaluate_classification(method: Method, embed: Embed, train: SplitFeatures, test: SplitFeatures,
                            spec: ClassificationSpec, seed: int) -> dict[str, Any]:
    """Accuracy, per-row correctness, eval-set digest and protocol of one classification protocol (on the first
    `test.max_queries` input rows in a `--limit` run; every class stays)."""
    test = query_rows(test, spec.input)
    if spec.mode == "linear_probe":
        correct, settings = linear_probe(embed, train, test, spec, seed)
    else:
        correct, settings = zero_shot(method, embed, test, spec)
    outcome = correct.to(torch.int64).numpy()
    row_ids = test.modalities[spec.input].row_ids
    return {
        "metrics": {f"{spec.name}/acc": compute_metrics(["acc"], CORRECT, np.asarray(outcome))["acc"]},
        "per_query": {f"{spec.name}/correct": outcome.tolist()},
        "eval_set": {spec.name: eval_set_digest(row_ids, test.label_names)},
        "protocol": {spec.name: {"mode": spec.mode, "input": spec.input, "n_classes": len(test.label_names),
                                 "n_classes_in_test": len(set(_row_labels(test, spec.input, spec.name).tolist())),
                                 "n_test": len(outcome), "tie_rule": TIE_RULE, **settings}},
    }
