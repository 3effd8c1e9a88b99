"""Leaderboard section of the pre-aligned regime: each method against its own warm start, paired on seeds and queries.

A run with `train.warm_start` stores the per-query outcomes of the model right after the warm start on the
run's own eval set (`protocol.warm_start.per_query`), so the change the method's own training makes is tested
with the crossed seed x query paired t-test of docs/statistics.md 2.2 (method minus its warm start, Holm
across the task's methods).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tabulate import tabulate

from pmrl_bench.metrics import dense_groups
from pmrl_bench.report.stats import MIN_SEEDS
from pmrl_bench.report.stats.multiple import adjust
from pmrl_bench.report.stats.outcomes import MetricDef, metric_def, per_query_values, split_metric, unit_means
from pmrl_bench.report.stats.paired import (
    SeedQueryParts,
    TTest,
    crossed_t_tests,
    mean_interval,
    seed_query_parts,
)
from pmrl_bench.results.table import Entity


@dataclass(frozen=True)
class WarmPair:
    """One entity's per-unit values after training and right after its warm start, as seed x query parts."""

    label: str
    after: SeedQueryParts
    warm: SeedQueryParts


def warm_pair(entity: Entity, prefix: str, mdef: MetricDef) -> WarmPair | None:
    """The entity's paired parts on `prefix` (None unless every ok run has both outcomes on one eval set)."""
    runs = [r for r in entity.runs if r.ok]
    own = [r.outcomes.get(prefix) for r in runs]
    warm = [r.warm_outcomes.get(prefix) for r in runs]
    if not runs or any(o is None or w is None or o[0] != w[0] for o, w in zip(own, warm, strict=True)):
        return None
    if len({len(o[1]) for o in own} | {len(w[1]) for w in warm}) != 1 or len({r.eval_set.get(prefix) for r in runs}) != 1:
        return None
    groups = runs[0].groups.get(prefix)
    dense = None if groups is None else dense_groups(groups)
    after, before = (unit_means(per_query_values(mdef, np.stack([x[1] for x in xs])), dense) for xs in (own, warm))
    if after.shape[1] < 2:
        return None
    return WarmPair(entity.label, seed_query_parts(after), seed_query_parts(before))


def warm_tests(pairs: Sequence[WarmPair]) -> tuple[TTest, np.ndarray]:
    """Method minus its own warm start for every pair (crossed paired t-test) and the Holm-adjusted p-values."""
    tests = [crossed_t_tests(p.after, [p.warm]) for p in pairs]
    merged = TTest(*(np.concatenate([getattr(t, f) for t in tests]) for f in TTest.__dataclass_fields__))
    return merged, adjust(np.asarray(merged.p, dtype=np.float64))


def warm_start_section(entities: Sequence[Entity], primary: str) -> list[str]:
    """Markdown lines of the section (empty when no entity has warm-start outcomes on the primary metric)."""
    prefix, metric = split_metric(primary)
    mdef = metric_def(metric)
    if mdef is None or mdef.is_median:
        return []
    found = [p for e in entities if (p := warm_pair(e, prefix, mdef)) is not None]
    if not found:
        return []
    pairs = [p for p in found if p.after.n_seeds >= MIN_SEEDS]
    untested = (f"{len(found) - len(pairs)} configuration(s) with fewer than {MIN_SEEDS} seeds (tuning selection "
                "runs, exploratory runs) are not tested here.")
    if not pairs:
        return [f"### Against the warm start: `{primary}`", "", untested]
    test, p_adj = warm_tests(pairs)
    rows = []
    for i, pair in enumerate(pairs):
        warm, after = mean_interval(pair.warm), mean_interval(pair.after)
        rows.append([pair.label, pair.after.n_seeds, f"{float(warm.value):.1f} ± {float(warm.half_width):.1f}",
                     f"{float(after.value):.1f} ± {float(after.half_width):.1f}",
                     f"{test.delta[i]:+.1f} [{test.ci_low[i]:+.1f}, {test.ci_high[i]:+.1f}]", f"{p_adj[i]:.2g}"])
    return [
        f"### Against the warm start: `{primary}`", "",
        "Each method after its own training against the model right after the shared warm start of the same "
        "runs (`protocol.warm_start.per_query`, same eval set); values ± 95% CI half-width over seeds and "
        "queries; change = method minus warm start with its 95% CI; p = crossed seed x query paired t-test, "
        f"Holm-adjusted over the methods of this task with at least {MIN_SEEDS} seeds.", "",
        tabulate(rows, ["method", "seeds", "warm start", "after training", "change (95% CI)", "p (Holm)"],
                 tablefmt="github"),
        *([""] + [untested] if len(found) > len(pairs) else []),
    ]
