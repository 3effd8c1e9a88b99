"""`compare`: the paired crossed-design test of two methods on one task and metric (docs/statistics.md 7.4)."""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pmrl_bench.errors import BenchError, unknown_name
from pmrl_bench.report.leaderboard import fmt_p
from pmrl_bench.report.stats import MIN_SEEDS, N_RESAMPLES
from pmrl_bench.report.stats.bootstrap import (
    BootstrapInput,
    bootstrap_p,
    percentile_interval,
    two_level_bootstrap,
)
from pmrl_bench.report.stats.outcomes import MetricDef, metric_def, per_query_values, split_metric, unit_means
from pmrl_bench.report.stats.paired import (
    SeedQueryParts,
    crossed_t_test,
    mean_interval,
    query_only_interval,
    seed_query_parts,
)
from pmrl_bench.report.stats.signflip import sign_flip_p
from pmrl_bench.results.table import (
    Entity,
    Sample,
    Scope,
    build_scope,
    check_config_choices,
    entry_of,
    load_runs,
    parse_config_choices,
    task_entities,
    task_layout,
)

LOG = logging.getLogger(__name__)


def _entity(entities: list[Entity], method: str, task: str, invalid: int) -> tuple[Entity, str | None]:
    """The entity of a method on the task: its only one, else the rule-chosen entry (and a line saying so)."""
    mine = [e for e in entities if e.method == method]
    if not mine and invalid:
        raise BenchError(f"all {invalid} result file(s) of {method} on {task} failed validation "
                         f"(see `python -m pmrl_bench validate results/{task}/{method}`)")
    if not mine:
        raise unknown_name("method", method, {e.method for e in entities}, f"(methods with results on {task})")
    if len(mine) == 1:
        return mine[0], None
    chosen = entry_of(mine)
    others = ", ".join(f"{e.config_text} [{e.config_hash[:8]}]" for e in mine if e is not chosen)
    if chosen is None:
        raise BenchError(f"{method} has {len(mine)} configurations on {task} and none is tuned or default "
                         f"({others}); pick one with --config {method}=LABEL")
    return chosen, (f"note: {method}: using its {chosen.kind_text} configuration [{chosen.config_hash[:8]}] (the rule: "
                    f"tuned, else default); others: {others}; choose with --config {method}=LABEL")


def _metric(layout, metric: str | None, kinds: dict[str, str]) -> tuple[str, MetricDef]:
    """The metric to compare: given, or the task's primary; refused with close matches when unknown."""
    name = metric or layout.primary
    if name is None:
        raise BenchError(f"task {layout.task} has no primary metric ({layout.note or 'no metric columns'}); "
                         f"name one with --metric (one of {', '.join(layout.columns) or 'none'})")
    prefix, bare = split_metric(name)
    mdef = metric_def(bare)
    if prefix not in kinds or mdef is None or mdef.outcome != kinds[prefix]:
        raise unknown_name("metric", name, layout.columns, f"(metrics of {layout.task})")
    return prefix, mdef


def _scope(task: str, prefix: str, a: Entity, b: Entity) -> Scope:
    """The joint scope of A and B, refused when their eval sets differ."""
    own = {}
    for e in (a, b):
        scope = build_scope(task, prefix, [e])
        if scope is None or not scope.samples:
            raise BenchError(f"{e.label} has no successful runs with {prefix} outcomes on {task}")
        own[e.key] = scope
    sa, sb = own[a.key], own[b.key]
    both_digests = sa.digest is not None and sb.digest is not None
    if (both_digests and sa.digest != sb.digest) or sa.reference[1:] != sb.reference[1:]:
        da = sa.digest[:8] if sa.digest else f"{sa.n_queries} queries"
        db = sb.digest[:8] if sb.digest else f"{sb.n_queries} queries"
        raise BenchError(f"different eval sets on {task}/{prefix}: {a.label} {da}, {b.label} {db}; "
                         "paired tests need the same queries and candidates")
    ref = sa if sa.digest is not None or sb.digest is None else sb
    joint = build_scope(task, prefix, [a, b], reference=ref.reference)
    lost = [e for e in (a, b) if e.key not in joint.samples]
    if lost:
        why = sorted({w for r, w in joint.left_out if (r.method, r.config_hash) == (lost[0].method, lost[0].config_hash)})
        raise BenchError(f"different eval sets on {task}/{prefix}: {lost[0].label} has no run on the other's "
                         f"({', '.join(why)}); paired tests need the same queries and candidates")
    if joint.n_units < 2:
        raise BenchError(f"{task}/{prefix} has fewer than 2 queries: nothing to test")
    return joint


def _interval(lo: float, hi: float) -> str:
    return f"[{lo:.2f}, {hi:.2f}]"


@dataclass(frozen=True)
class _Estimates:
    """Per-entity values, interval texts and bootstrap replicates of one metric."""

    values: dict[str, float]
    intervals: dict[str, str]
    draws: dict[str, np.ndarray]
    scale: float  # max(1, max |y|), for the bootstrap p tolerance
    parts: dict[str, SeedQueryParts]  # mean-type metrics only


def _estimates(scope: Scope, samples: list[Sample], mdef: MetricDef, n_resamples: int) -> _Estimates:
    """Values with 95% intervals (t-interval, or bootstrap for MdR) and the two-level bootstrap replicates."""
    if mdef.is_median:
        inputs = [BootstrapInput(s.entity.key, np.zeros((len(s.seeds), scope.n_units, 0)), s.outcomes) for s in samples]
        draws = {k: d.median for k, d in two_level_bootstrap(scope.name, inputs, n_resamples, scope.groups).items()}
        values = {s.entity.key: float(np.median(s.outcomes.astype(np.float64), axis=1).mean()) for s in samples}
        intervals = {k: _interval(*percentile_interval(d)) + " (bootstrap)" for k, d in draws.items()}
        return _Estimates(values, intervals, draws, float(max(s.outcomes.max() for s in samples)), {})
    ys = {s.entity.key: unit_means(per_query_values(mdef, s.outcomes)[..., None], scope.groups) for s in samples}
    parts = {k: seed_query_parts(y) for k, y in ys.items()}
    intervals = {}
    for k, p in parts.items():
        v, h = float(p.value[0]), float(mean_interval(p).half_width[0])
        intervals[k] = _interval(v - h, v + h) + (" (queries only)" if p.n_seeds == 1 else "")
    inputs = [BootstrapInput(k, y) for k, y in ys.items()]
    draws = {k: d.mean[:, 0] for k, d in two_level_bootstrap(scope.name, inputs, n_resamples, scope.groups).items()}
    return _Estimates({k: float(p.value[0]) for k, p in parts.items()}, intervals, draws,
                      max(p.scale for p in parts.values()), parts)


def _difference_lines(scope: Scope, a: Entity, b: Entity, mdef: MetricDef, est: _Estimates, one_seed: bool,
                      n_resamples: int) -> tuple[list[str], list[str]]:
    """The A - B line(s) of the primary analysis, and its warnings."""
    head = f"difference {a.label} - {b.label} = {est.values[a.key] - est.values[b.key]:.2f}"
    if mdef.is_median:
        return [f"{head} (MdR is not tested by the t-test)"], []
    if one_seed:
        d = (est.parts[a.key].unit_mean - est.parts[b.key].unit_mean)[:, 0]
        _, lo, hi = query_only_interval(d)
        p = sign_flip_p(d, scope.name, a.key, b.key, n_resamples)
        return [f"{head}  95% CI {_interval(lo, hi)}, sign-flip p = {fmt_p(p)}  "
                "(conditional on these runs; seed variance not included)"], []
    res = crossed_t_test(est.parts[a.key], est.parts[b.key])
    lines = [f"{head}  95% CI {_interval(float(res.ci_low[0]), float(res.ci_high[0]))}  "
             f"p = {fmt_p(float(res.p[0]))}  t = {float(res.t[0]):.3f}  nu = {float(res.nu[0]):.1f}"]
    if bool(res.degenerate[0]):
        return lines, ["no variation: the difference has zero estimated variance"]
    lines.append(f"variance shares: queries {100 * float(res.share_queries[0]):.0f}%, "
                 f"seeds {100 * float(res.share_seeds[0]):.0f}%")
    return lines, []


def compare_text(scope: Scope, a: Entity, b: Entity, mdef: MetricDef, n_resamples: int = N_RESAMPLES) -> str:
    """The report of docs/statistics.md 7.4 for A vs B on one scope."""
    samples = [scope.samples[a.key], scope.samples[b.key]]
    units = "queries" if scope.groups is None else "query groups"
    lines = [f"task {scope.task}, metric {scope.prefix}/{mdef.name} ({mdef.direction}), "
             f"N = {scope.n_units} {units}, eval set {scope.digest[:8] if scope.digest else 'not recorded'}"]
    est = _estimates(scope, samples, mdef, n_resamples)
    width = max(len(a.label), len(b.label))
    for s in samples:
        failed = ", ".join(str(r.seed) for r in s.entity.failed) or "none"
        lines.append(f"  {s.entity.label:<{width}}  {est.values[s.entity.key]:.2f}  95% CI {est.intervals[s.entity.key]}  "
                     f"seeds {' '.join(map(str, s.seeds))} ({len(s.seeds)} used); failed: {failed}")
    fewest = min(len(s.seeds) for s in samples)
    diff_lines, warnings = _difference_lines(scope, a, b, mdef, est, fewest == 1, n_resamples)
    boot = est.draws[a.key] - est.draws[b.key]
    lo, hi = percentile_interval(boot)
    lines += diff_lines + [f"robustness: two-level bootstrap, {n_resamples:,} resamples: 95% CI {_interval(lo, hi)}, "
                           f"p = {fmt_p(float(bootstrap_p(boot, est.scale)))}"]
    if fewest == 1:
        warnings.append("seed variance not estimable (one seed)")
    elif fewest < MIN_SEEDS:
        warnings.append(f"under-powered: fewer than {MIN_SEEDS} seeds")
    warnings += [f"{r.method} seed {r.seed} left out ({why})" for r, why in scope.left_out]
    if scope.unverified:
        warnings.append("query identity not verified (no eval_set): " + ", ".join(scope.unverified))
    return "\n".join(lines + [f"warning: {w}" for w in warnings])


def cli_compare(args: argparse.Namespace) -> int:
    """Print the paired comparison of two methods on one task."""
    root = Path(args.results_dir)
    if not root.is_dir():
        raise BenchError(f"results folder {root}/ not found")
    table = load_runs(root)
    for problem in table.problems:
        if problem.path.relative_to(root).parts[0] == args.task:
            LOG.warning("warning: skipping %s: %s", problem.path, problem.reason)
    if args.task not in table.tasks() and not any(p.path.relative_to(root).parts[0] == args.task
                                                   for p in table.problems):
        raise unknown_name("task", args.task, table.tasks(), f"(tasks with results in {root}/)")
    a_name, b_name = args.methods
    if a_name == b_name:
        raise BenchError("compare needs two different methods")
    choices = parse_config_choices(args.config)
    check_config_choices(table.runs, choices)
    entities = task_entities(table.runs, args.task, choices)
    invalid = Counter(p.path.relative_to(root).parts[:2] for p in table.problems if len(p.path.relative_to(root).parts) > 2)
    (a, note_a), (b, note_b) = (_entity(entities, m, args.task, invalid[(args.task, m)]) for m in (a_name, b_name))
    for note in (note_a, note_b):
        if note:
            LOG.warning(note)
    layout = task_layout(args.task, table.runs)
    if layout.note:
        LOG.warning("warning: %s: %s", args.task, layout.note)
    kinds = {p: k for e in (a, b) for r in e.runs if r.ok for p, (k, _) in r.outcomes.items()}
    prefix, mdef = _metric(layout, args.metric, kinds)
    scope = _scope(args.task, prefix, a, b)
    print(compare_text(scope, a, b, mdef))
    return 0
