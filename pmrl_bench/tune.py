"""Equal-budget tuning on validation: each method's declared search space, selection runs, the winner, final seeds.

Stage 1 trains every configuration of the method's `search_space` with the selection seeds (plain runs,
selected on validation like any run); the winner is the configuration with the highest mean validation
primary metric over those seeds (ties: the first in the declared order). Only `protocol.select.val_score`
is read, never a test metric. Stage 2 runs the final seeds with the winner; their records carry `selection`.

Overrides that only change evaluation (the `evaluation` section: re-ranker, robustness) leave training as it is,
so the selection runs leave them out and are the plain task's own (the winner is the same configuration); the
final runs add them, and their `selection` lists them under `evaluation_only`.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
from dataclasses import dataclass
from typing import Any

from pmrl_bench.errors import BenchError, unknown_name

MAX_CONFIGS = 12  # the same budget for every method
RULE = "max mean validation primary metric over the selection seeds; ties: first in the declared space"
SHARED_RULE = "; selection runs without the evaluation-only settings (they train alike), which the final runs add"


def search_space(method: str) -> dict[str, list[Any]]:
    """The method's declared search space (parameter -> values), checked: known parameters, <= MAX_CONFIGS."""
    from pmrl_bench.registry import get_method

    cls = get_method(method)
    space = dict(getattr(cls, "search_space", {}))
    for key, values in space.items():
        if key not in cls.defaults:
            raise unknown_name(f"parameter in the search space of {method!r}:", key, cls.defaults)
        if not isinstance(values, list) or not values:
            raise BenchError(f"search space of {method!r}: {key} needs a non-empty list of values")
    n = len(configurations(space))
    if n > MAX_CONFIGS:
        raise BenchError(f"search space of {method!r} has {n} configurations; at most {MAX_CONFIGS} (the same for every method)")
    return space


def configurations(space: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every configuration of the space in declared order (the product); an empty space gives the defaults."""
    return [dict(zip(space, values, strict=True)) for values in itertools.product(*space.values())]


def space_hash(space: dict[str, list[Any]]) -> str:
    """Hash of the space (keys and values in declared order)."""
    return hashlib.sha256(json.dumps(space, separators=(",", ":")).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TunePlan:
    """One (method, task) tuning: its space, selection runs and final seeds."""

    method: str
    task: str
    space: dict[str, list[Any]]
    base: list[tuple[str, Any]]
    selection_seeds: list[int]
    final_seeds: list[int]
    results_dir: str
    eval_keys: tuple[str, ...] = ()  # override keys that only change evaluation: left out of the selection runs

    @property
    def selection_base(self) -> list[tuple[str, Any]]:
        """The overrides of the selection runs: the base without its evaluation-only keys."""
        return [(k, v) for k, v in self.base if k not in self.eval_keys]

    @property
    def configs(self) -> list[dict[str, Any]]:
        """The configurations tried."""
        return configurations(self.space)

    def selection_requests(self) -> list[Any]:
        """Stage 1: every configuration with every selection seed (plain runs)."""
        from pmrl_bench.plan import RunRequest

        return [
            RunRequest(task=self.task, method=self.method, seed=seed, results_dir=self.results_dir,
                       overrides=[*self.selection_base, *cfg.items()])
            for cfg in self.configs
            for seed in self.selection_seeds
        ]

    def choose(self) -> dict[str, Any] | None:
        """The `selection` of the winner, or None while a selection run has no ok record."""
        from pmrl_bench.plan import plan_run
        from pmrl_bench.results.record import read_result

        reqs, k = self.selection_requests(), len(self.selection_seeds)
        scores = []
        for i in range(len(self.configs)):
            values = []
            for req in reqs[i * k : (i + 1) * k]:
                planned = plan_run(req)
                if not planned.done:
                    return None
                score = read_result(planned.path).protocol.get("select", {}).get("val_score")
                if score is None:
                    raise BenchError(f"{planned.path}: no validation score; tuning needs train.select=best_val")
                values.append(float(score))
            scores.append(sum(values) / len(values))
        best = max(range(len(scores)), key=lambda i: (scores[i], -i))
        rule = RULE if self.space else "empty search space: the method's defaults"
        shared = {"evaluation_only": list(self.eval_keys)} if self.eval_keys else {}
        return {"space_hash": space_hash(self.space), "n_configs": len(scores), "chosen": self.configs[best],
                "val_score": scores[best], "seeds": list(self.selection_seeds),
                "rule": rule + (SHARED_RULE if self.eval_keys else ""), **shared}

    def final_requests(self, selection: dict[str, Any]) -> list[Any]:
        """Stage 2: the final seeds with the winner, carrying `selection`."""
        from pmrl_bench.plan import RunRequest

        return [
            RunRequest(task=self.task, method=self.method, seed=seed, results_dir=self.results_dir,
                       overrides=[*self.base, *selection["chosen"].items()], selection=selection)
            for seed in self.final_seeds
        ]

    def check_final_evaluation(self) -> None:
        """Refuse, before any selection run trains, evaluation-only settings the final runs cannot evaluate (a
        re-rank depth above the test candidates): the selection runs leave them out, so they are checked here."""
        from pmrl_bench.evaluation.rerank import check_k
        from pmrl_bench.plan import RunRequest, plan_run
        from pmrl_bench.runner import load_features

        if not self.eval_keys:
            return
        final = plan_run(RunRequest(task=self.task, method=self.method, seed=self.final_seeds[0],
                                    results_dir=self.results_dir, overrides=[*self.base, *self.configs[0].items()]))
        check_k(final.config["evaluation"]["rerank"], load_features(final, "test", "cpu").n_items)

    def cost_line(self) -> str:
        """Configurations x seeds x epochs of both stages."""
        from pmrl_bench.config import resolve_config

        epochs = resolve_config(self.task, self.method, self.base)["train"]["epochs"]
        n, s, f = len(self.configs), len(self.selection_seeds), len(self.final_seeds)
        space = f"{n} configurations" if self.space else "empty search space: the defaults"
        shared = (f" (selection runs shared with the plain task: {', '.join(self.eval_keys)} only change evaluation)"
                  if self.eval_keys else "")
        return (f"tune {self.method} on {self.task}: {space} x {s} selection seed(s) x {epochs} epochs = "
                f"{n * s * epochs} epochs{shared}, then {f} final seed(s) x {epochs} epochs = {f * epochs} epochs")


def make_plan(method: str, task: str, base: list[tuple[str, Any]], selection_seeds: list[int],
              final_seeds: list[int], results_dir: str) -> TunePlan:
    """A checked tuning plan: the space is valid and no override fixes a tuned parameter or disables selection."""
    from pmrl_bench.config import evaluation_only, resolve_config

    space = search_space(method)
    fixed = sorted({k.split(".")[-1] for k, _ in base} & set(space))
    if fixed:
        raise BenchError(f"tune {method}: {', '.join(fixed)} is tuned; do not also --set it")
    if resolve_config(task, method, base)["train"]["select"] != "best_val":
        raise BenchError("tune selects on validation: leave train.select at best_val")
    if not selection_seeds or not final_seeds:
        raise BenchError("tune needs at least one selection seed and one final seed")
    return TunePlan(method, task, space, list(base), list(selection_seeds), list(final_seeds), results_dir,
                    tuple(evaluation_only(task, method, list(base))))


def cli_tune(args: argparse.Namespace) -> int:
    """`tune`: train every configuration with the selection seeds, pick on validation, run the final seeds."""
    from pmrl_bench.config import parse_overrides
    from pmrl_bench.plan import check_results_dir, plan_run
    from pmrl_bench.runner import execute, summary_line
    from pmrl_bench.task import DEFAULT_TASK

    plan = make_plan(args.method, args.task or DEFAULT_TASK, parse_overrides(args.overrides), args.selection_seeds,
                     args.seeds, args.results_dir)
    for req in plan.selection_requests():
        plan_run(req)  # every configuration resolves (types, ranges) before anything trains
    plan.check_final_evaluation()
    check_results_dir(args.results_dir)
    print(plan.cost_line())
    failed = 0
    for req in plan.selection_requests():
        planned = plan_run(req)
        if planned.done:
            print(f"skip: {planned.path} exists", file=sys.stderr)
            continue
        failed += execute(req).status != "ok"
    selection = plan.choose()
    if selection is None or failed:
        raise BenchError(f"tune {args.method}: {failed} selection run(s) failed; fix them and run tune again")
    chosen = ", ".join(f"{k}={v}" for k, v in selection["chosen"].items()) or "the defaults"
    print(f"chosen on validation: {chosen} (mean val {selection['val_score']:.2f} over seeds {selection['seeds']})")
    for req in plan.final_requests(selection):
        planned = plan_run(req)
        record = execute(req)
        print(summary_line(record, planned.path))
        failed += record.status != "ok"
    return 1 if failed else 0
