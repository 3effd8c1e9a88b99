"""Classification evaluator: a linear probe on frozen trained embeddings, or zero-shot through class prompts.

Both protocols classify every feature row of the input modality of the test split (one row per item for
media; one per caption for text), with the item's label as the target.

* `linear_probe`: multinomial logistic regression on the L2-normalised head outputs, fitted with
  full-batch L-BFGS (float64, deterministic: the L2 path starts from zeros); the L2 penalty is chosen on the
  validation split (`L2_RULE`: one fit per value of `PROBE_L2_GRID` on train, scored on validation),
  then one final fit on train + validation at the chosen value (`fit_probe`).
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
PROBE_MAX_ITER = 300
PROBE_TOLERANCE_GRAD = 1e-6  # L-BFGS stops once every gradient entry of the mean loss is below this
TIE_RULE = "argmax; ties go to the lowest class index"
L2_RULE = ("one fit per L2 of the grid on train, from the strongest penalty down, each started from the previous "
           "solution; accuracy on validation (ties: the stronger penalty); final fit on train + validation at the "
           "chosen L2, started from its train solution")

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


def fit_logistic(x: Tensor, y: Tensor, n_classes: int, l2: float, max_iter: int = PROBE_MAX_ITER,
                 init: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """(W [D, C], b [C]) minimising mean cross-entropy + l2/2 * ||W||^2; full-batch L-BFGS from `init` (default zeros).

    The gradient is written out (softmax minus one-hot) against a contiguous x^T: twice as fast as autograd,
    whose x^T @ G takes a slow strided path on these tall, narrow products."""
    x = x.to(torch.float64)
    xt = x.T.contiguous()
    onehot = torch.nn.functional.one_hot(y, n_classes).to(torch.float64)
    w0, b0 = init if init is not None else (torch.zeros(x.shape[1], n_classes), torch.zeros(n_classes))
    weight, bias = w0.to(torch.float64).clone(), b0.to(torch.float64).clone()
    opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, tolerance_grad=PROBE_TOLERANCE_GRAD,
                            tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        z = x @ weight + bias
        lse = torch.logsumexp(z, dim=1)
        g = (torch.exp(z - lse[:, None]) - onehot) / len(y)
        weight.grad, bias.grad = xt @ g + l2 * weight, g.sum(dim=0)
        return (lse - (z * onehot).sum(dim=1)).mean() + 0.5 * l2 * weight.pow(2).sum()

    with torch.no_grad():
        opt.step(closure)
    return weight, bias


def predict(weight: Tensor, bias: Tensor, x: Tensor) -> Tensor:
    """Class index per row (ties: lowest index)."""
    return torch.argmax(x.to(torch.float64) @ weight + bias, dim=1)


def choose_l2(x_train: Tensor, y_train: Tensor, x_val: Tensor, y_val: Tensor, n_classes: int,
              grid: Sequence[float] = PROBE_L2_GRID) -> tuple[int, list[float], list[tuple[Tensor, Tensor]]]:
    """Index of the L2 penalty whose probe fitted on train is most accurate on validation (ties: the stronger
    penalty), the validation accuracy (percent) of each and each fit (W, b); one fit per value, from the
    strongest penalty down, each started from the previous solution. A validation target of -1 is always wrong."""
    order = sorted(range(len(grid)), key=lambda i: -grid[i])
    fits: dict[int, tuple[Tensor, Tensor]] = {}
    init = None
    for i in order:
        fits[i] = init = fit_logistic(x_train, y_train, n_classes, grid[i], init=init)
    scores = [100.0 * float((predict(*fits[i], x_val) == y_val).double().mean()) if len(y_val) else 0.0
              for i in range(len(grid))]
    best = max(range(len(grid)), key=lambda i: (scores[i], grid[i]))
    return best, scores, [fits[i] for i in range(len(grid))]


def fit_probe(x_train: Tensor, y_train: Tensor, x_val: Tensor, y_val: Tensor,
              n_classes: int) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """(W, b, settings) of the probe under `L2_RULE`; rows with target -1 (no class) never enter a fit."""
    fit_tr, fit_val = y_train >= 0, y_val >= 0
    with single_thread():
        best, val_acc, fits = choose_l2(x_train[fit_tr], y_train[fit_tr], x_val, y_val, n_classes)
        l2 = float(PROBE_L2_GRID[best])
        weight, bias = fit_logistic(torch.cat([x_train[fit_tr], x_val[fit_val]]),
                                    torch.cat([y_train[fit_tr], y_val[fit_val]]), n_classes, l2, init=fits[best])
    settings = {"l2": l2, "l2_rule": L2_RULE, "l2_grid": list(PROBE_L2_GRID), "val_acc": val_acc,
                "n_train": int(fit_tr.sum()), "n_val": len(y_val), "n_final_fit": int(fit_tr.sum() + fit_val.sum()),
                "max_iter": PROBE_MAX_ITER, "tolerance_grad": PROBE_TOLERANCE_GRAD}
    return weight, bias, settings


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


def linear_probe(embed: Embed, train: SplitFeatures, val: SplitFeatures | None, test: SplitFeatures,
                 spec: ClassificationSpec) -> tuple[Tensor, dict[str, Any]]:
    """Per-row correctness of a logistic-regression probe (L2 chosen on validation), and its settings."""
    if val is None:
        raise BenchError(f"classification {spec.name!r}: a linear probe needs the validation split to choose its L2")
    n_classes = len(train.label_names)
    if tuple(test.label_names) != tuple(train.label_names) or tuple(val.label_names) != tuple(train.label_names):
        raise BenchError(f"classification {spec.name!r}: the train, validation and test splits name different classes")
    weight, bias, settings = fit_probe(
        _normalise(embed(spec.input, train)), _row_labels(train, spec.input, spec.name),
        _normalise(embed(spec.input, val)), _row_labels(val, spec.input, spec.name), n_classes)
    pred = predict(weight, bias, _normalise(embed(spec.input, test)))
    settings = {"features": "L2-normalised head outputs", "solver": "full-batch L-BFGS (float64, L2 path from zeros)",
                **settings}
    return pred == _row_labels(test, spec.input, spec.name), settings


def zero_shot(method: Method, embed: Embed, test: SplitFeatures, spec: ClassificationSpec,
              sign: float = 1.0) -> tuple[Tensor, dict[str, Any]]:
    """Per-row correctness of the best-scoring class prompt under the method's similarity, the prompts' sign
    relative to the input calibrated on train for a sign-invariant method (`sign`)."""
    prompts = test.modalities.get(prompt_key(spec))
    if prompts is None:
        raise BenchError(f"zero-shot {spec.name!r}: the test split carries no class-prompt features "
                         "(pmrl_bench.data.prompts.attach_class_prompts adds them)")
    prompt_split = SplitFeatures(split="class_prompts", item_ids=tuple(test.label_names),
                                 modalities={spec.prompt_modality: prompts})
    with torch.no_grad():
        candidates = {spec.prompt_modality: embed(spec.prompt_modality, prompt_split) * sign}
        query = embed(spec.input, test)
        scores = torch.cat([method.similarity({spec.input: query[i : i + 4096]}, candidates)
                            for i in range(0, len(query), 4096)])
    if scores.shape != (len(query), len(test.label_names)):
        raise RuntimeError(f"similarity returned shape {tuple(scores.shape)}, expected {(len(query), len(test.label_names))}")
    settings = {"prompt": spec.prompt, "prompt_modality": spec.prompt_modality, "score": "method.similarity",
                "sign": sign}
    return scores.argmax(dim=1).cpu() == _row_labels(test, spec.input, spec.name), settings


def evaluate_classification(method: Method, embed: Embed, train: SplitFeatures, val: SplitFeatures | None,
                            test: SplitFeatures, spec: ClassificationSpec,
                            signs: dict[tuple[str, str], float] | None = None) -> dict[str, Any]:
    """Accuracy, per-row correctness, eval-set digest and protocol of one classification protocol (on the first
    `max_queries` input rows of the test and validation splits in a `--limit` run; every class stays); `signs`
    (calibration.train_signs) orient a zero-shot protocol's prompts."""
    test = query_rows(test, spec.input)
    val = None if val is None else query_rows(val, spec.input)
    if spec.mode == "linear_probe":
        correct, settings = linear_probe(embed, train, val, test, spec)
    else:
        correct, settings = zero_shot(method, embed, test, spec, (signs or {}).get((spec.input, spec.prompt_modality), 1.0))
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
