"""`leaderboard`: per-task significance-tested tables and the cross-task ranking, as Markdown (docs/statistics.md 7)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tabulate import tabulate

from pmrl_bench.errors import BenchError, unknown_name
from pmrl_bench.files import atomic_write_text
from pmrl_bench.outputs import check_output_path
from pmrl_bench.report.cache import CACHE_DIR, StatsCache, scope_key
from pmrl_bench.report.robustness import robustness_section
from pmrl_bench.report.stats import ALPHA, MIN_SEEDS, N_RESAMPLES, PROTOCOL_VERSION, STATS_SEED
from pmrl_bench.report.stats.best import column_verdict
from pmrl_bench.report.stats.bootstrap import BootstrapInput, percentile_interval, two_level_bootstrap
from pmrl_bench.report.stats.multiple import CONTROLS, CORRECTIONS
from pmrl_bench.report.stats.outcomes import metric_def, per_query_values, split_metric, unit_means
from pmrl_bench.report.stats.paired import SeedQueryParts, crossed_t_tests, mean_interval, seed_query_parts
from pmrl_bench.report.stats.ranking import (
    ID_MIN_TASKS,
    critical_difference,
    friedman_iman_davenport,
    friedman_permutation_p,
    probability_of_improvement,
    task_ranks,
    wilcoxon_p,
)
from pmrl_bench.report.suites import DEFAULT_SUITE, Suite, load_suite
from pmrl_bench.report.warm_start import warm_start_section
from pmrl_bench.results.table import (
    Entity,
    RunTable,
    Scope,
    TaskLayout,
    build_scope,
    check_config_choices,
    entry_of,
    load_runs,
    parse_config_choices,
    task_entities,
    task_layout,
)

LOG = logging.getLogger(__name__)

DASH = "–"
POWER = 0.8
COMPACT_METRICS = {"rank": ("R@1", "MRR"), "correct": ("acc",)}
HOW_TO_READ = (
    "How to read this: each task table lists every method configuration that has results, best first on the "
    "task's primary metric. A cell is the mean over training seeds with its 95% confidence interval; **bold** is "
    "the best among methods run with at least {min_seeds} seeds, † marks a method that is not significantly worse "
    "than the bold one, no mark means significantly worse, and ‡ means not tested (too few seeds, or a median "
    "metric). \"Not significantly worse\" is not \"equal\": the footnote under each table gives the smallest "
    "difference the test would detect at this size. A method's entry is its tuned configuration (chosen on "
    "validation), else its paper defaults; other configurations are labelled by the settings that differ from "
    "the defaults. The cross-task ranking at the end ranks the entries of the suite's tasks only; each task's "
    "page has every metric."
)


def _warn(message: str) -> None:
    """One warning line in the log."""
    LOG.warning(message)


def fmt_p(p: float) -> str:
    """p-value as in docs/statistics.md 7.3: 3 significant digits, scientific below 0.001."""
    if p == 0:
        return "0"
    return f"{p:.1e}" if p < 0.001 else f"{p:.3g}"


# --- statistics of one scope ----------------------------------------------------------------------


@dataclass(frozen=True)
class CellStats:
    """One entity in one metric column: value, interval, seeds used, and the parts for tests."""

    value: float
    half_width: float | None  # mean-type metrics with >= 2 seeds
    interval: tuple[float, float] | None  # MdR with >= 2 seeds: bootstrap percentile interval
    n_seeds: int
    per_seed: np.ndarray
    parts: SeedQueryParts | None  # mean-type metrics only


def scope_cells(scope: Scope, names: Sequence[str], n_resamples: int = N_RESAMPLES) -> dict[str, dict[str, CellStats]]:
    """metric name -> entity key -> CellStats, for the metrics of one (task, prefix)."""
    defs = [metric_def(n) for n in names]
    means = [d for d in defs if not d.is_median]
    out: dict[str, dict[str, CellStats]] = {d.name: {} for d in defs}
    for key, sample in scope.samples.items():
        if not means:
            break
        s = len(sample.seeds)
        y = np.stack([per_query_values(d, sample.outcomes) for d in means], axis=-1)
        parts = seed_query_parts(unit_means(y, scope.groups))
        half = mean_interval(parts).half_width
        for j, d in enumerate(means):
            h = float(half[j]) if s >= 2 else None
            out[d.name][key] = CellStats(float(parts.value[j]), h, None, s, parts.per_seed[:, j], parts.metric(j))
    if "MdR" in out:
        boot_in = [BootstrapInput(k, np.zeros((len(smp.seeds), scope.n_units, 0)), smp.outcomes)
                   for k, smp in scope.samples.items() if len(smp.seeds) >= 2]
        draws = two_level_bootstrap(scope.name, boot_in, n_resamples, scope.groups) if boot_in else {}
        for key, smp in scope.samples.items():
            per_seed = np.median(smp.outcomes.astype(np.float64), axis=1)
            interval = tuple(float(v) for v in percentile_interval(draws[key].median)) if key in draws else None
            out["MdR"][key] = CellStats(float(per_seed.mean()), None, interval, len(per_seed), per_seed, None)
    return out


# --- one task table -------------------------------------------------------------------------------


@dataclass
class TaskTable:
    """Everything printed for one task."""

    layout: TaskLayout
    entities: list[Entity]
    scopes: dict[str, Scope]  # prefix -> scope
    cells: dict[str, dict[str, CellStats]]  # column -> entity key -> stats
    marks: dict[str, dict[str, str]]  # column -> entity key -> '**', '†', '', '‡'
    comparisons: dict[str, int]  # tested column -> m
    compact: list[str]  # columns of the compact table: primary, then R@1 and MRR (acc) per prefix
    detectable: dict[str, tuple[float, float]]  # tested column -> smallest detectable difference (min, max)
    above_bold: dict[str, list[str]]  # column -> untested entries above the bold one
    invalid: dict[str, int]  # method -> invalid files under <task>/<method>/ (not attributable to a config)


def _column_marks(column: str, cells: dict[str, CellStats], entities: list[Entity],
                  correction: str) -> tuple[dict[str, str], int | None]:
    """Marks per entity key ('**' bold, '†', '‡' or none) and the number of tests (None: not tested)."""
    mdef = metric_def(split_metric(column)[1])
    present = [e for e in entities if e.key in cells]
    values = np.array([cells[e.key].value for e in present])
    eligible = np.array([cells[e.key].n_seeds >= MIN_SEEDS for e in present])
    parts = None if mdef.is_median else [cells[e.key].parts for e in present]
    verdict = column_verdict(values, eligible, mdef.higher_is_better, parts, correction)
    marks = {}
    for i, e in enumerate(present):
        if i in verdict.best:
            marks[e.key] = "**"
        elif not eligible[i] or mdef.is_median:
            marks[e.key] = "‡"
        else:
            marks[e.key] = "†" if verdict.adjusted_p[i] >= ALPHA else ""
    return marks, (None if mdef.is_median else verdict.n_comparisons)


def _detectable(cells: dict[str, CellStats], marks: dict[str, str]) -> tuple[float, float] | None:
    """Smallest difference to the bold entry detectable at 80% power (two-sided alpha, unadjusted): min, max."""
    best = next((k for k, m in marks.items() if m == "**"), None)
    tested = [k for k, m in marks.items() if m in ("†", "") and cells[k].parts is not None]
    if best is None or cells[best].parts is None or not tested:
        return None
    res = crossed_t_tests(cells[best].parts, [cells[k].parts for k in tested])
    from scipy import stats as sps

    mde = (sps.t.ppf(1 - ALPHA / 2, res.nu) + sps.t.ppf(POWER, res.nu)) * res.se
    mde = mde[np.isfinite(mde)]
    return (float(mde.min()), float(mde.max())) if mde.size else None


def _above_bold(cells: dict[str, CellStats], marks: dict[str, str], entities: list[Entity],
                higher_is_better: bool) -> list[str]:
    """Labels of untested entries whose value beats the bold one (bold is the best among tested entries only)."""
    bold = [cells[k].value for k, m in marks.items() if m == "**"]
    if not bold:
        return []
    sign = 1.0 if higher_is_better else -1.0
    return [e.label for e in entities if e.key in cells and cells[e.key].n_seeds < MIN_SEEDS
            and sign * (cells[e.key].value - bold[0]) > 0]


def _compact_columns(layout: TaskLayout, kinds: dict[str, str], primary: str | None) -> list[str]:
    """Primary metric first, then R@1 and MRR per retrieval direction, acc per classification prefix."""
    out = [primary] if primary else []
    order = [split_metric(c)[0] for c in ([primary] if primary else []) + layout.columns]
    for prefix in sorted(kinds, key=lambda p: (order.index(p) if p in order else len(order), p)):
        out += [f"{prefix}/{m}" for m in COMPACT_METRICS.get(kinds[prefix], ()) if f"{prefix}/{m}" not in out]
    return out


def build_task_table(table: RunTable, task: str, choices: dict[str, str], correction: str,
                     n_resamples: int = N_RESAMPLES, warn: Callable[[str], None] = _warn,
                     primary: str | None = None, cache: StatsCache | None = None) -> TaskTable:
    """Statistics of one task: scopes per prefix, cells per column, marks per column (primary: the suite's)."""
    layout = task_layout(task, table.runs)
    if layout.note:
        warn(f"warning: {task}: {layout.note}")
    if primary is not None:
        layout = replace(layout, primary=primary)
    entities = task_entities(table.runs, task, choices)
    kinds = {p: k for e in entities for r in e.runs if r.ok for p, (k, _) in r.outcomes.items()}
    compact = [c for c in _compact_columns(layout, kinds, layout.primary) if split_metric(c)[0] in kinds]
    by_prefix: dict[str, list[str]] = {}
    for column in [*layout.columns, *(c for c in compact if c not in layout.columns)]:
        prefix, name = split_metric(column)
        by_prefix.setdefault(prefix, []).append(name)
    scopes, cells, marks, comparisons, detectable, above = {}, {}, {}, {}, {}, {}
    for prefix, names in by_prefix.items():
        scope = build_scope(task, prefix, entities)
        if scope is None:
            continue
        for run, why in scope.left_out:
            warn(f"warning: {run.path}: left out of {task}/{prefix} ({why}, not the reference eval set)")
        if scope.n_units < 2:
            warn(f"warning: {task}/{prefix}: fewer than 2 queries; no statistics")
            continue
        scopes[prefix] = scope
        computed = (cache or StatsCache(None, warn)).get_or_compute(
            scope_key(scope, names, n_resamples), lambda: scope_cells(scope, names, n_resamples))  # noqa: B023
        for name, per_entity in computed.items():
            column = f"{prefix}/{name}"
            cells[column] = per_entity
            marks[column], m = _column_marks(column, per_entity, entities, correction)
            if m is not None:
                comparisons[column] = m
                if (d := _detectable(per_entity, marks[column])) is not None:
                    detectable[column] = d
            above[column] = _above_bold(per_entity, marks[column], entities, metric_def(name).higher_is_better)
    invalid = Counter(p.path.parent.name for p in table.problems if p.path.parent.parent.name == task)
    return TaskTable(layout, entities, scopes, cells, marks, comparisons,
                     [c for c in compact if c in cells], detectable, above, dict(sorted(invalid.items())))


def _cell_text(stats: CellStats | None, mark: str) -> str:
    if stats is None:
        return DASH
    text = f"{stats.value:.1f}"
    if stats.interval is not None:
        text += f" [{stats.interval[0]:.1f}, {stats.interval[1]:.1f}]"
    elif stats.half_width is not None:
        text += f" ± {stats.half_width:.1f}"
    if mark == "**":
        return f"**{text}**"
    return f"{text} {mark}" if mark else text


def _row_order(tt: TaskTable) -> list[Entity]:
    """Best first by the primary metric (unrounded), ties and entities without a value by label."""
    col = tt.layout.primary
    cells = tt.cells.get(col, {}) if col else {}
    sign = -1.0 if col and metric_def(split_metric(col)[1]).higher_is_better else 1.0
    return sorted(tt.entities, key=lambda e: (e.key not in cells, sign * cells[e.key].value if e.key in cells else 0.0,
                                             e.label, e.config_hash))


def _header(column: str) -> str:
    prefix, name = split_metric(column)
    return f"{prefix} {name}"


def full_columns(tt: TaskTable) -> list[str]:
    """Every metric column of a task with statistics: the task file's grid, then the compact extras."""
    return [c for c in tt.layout.columns if c in tt.cells] + [c for c in tt.compact if c not in tt.layout.columns]


def compact_entities(tt: TaskTable) -> list[Entity]:
    """The compact table's rows: tuned and default entries, and ad hoc ones with >= MIN_SEEDS successful seeds
    (single-seed tuning selection runs and exploratory runs stay on the task page)."""
    return [e for e in _row_order(tt) if e.kind != "ad hoc" or sum(r.ok for r in e.runs) >= MIN_SEEDS]


def render_task_table(tt: TaskTable, columns: Sequence[str] | None = None) -> str:
    """The Markdown table of one task: the compact rows and columns, or every entity under `columns`."""
    entities = compact_entities(tt) if columns is None else _row_order(tt)
    columns = list(tt.compact if columns is None else columns)
    rows = []
    for e in entities:
        n_ok = sum(r.ok for r in e.runs)
        row = [e.label, e.config_text, f"{n_ok}/{len(e.runs)}"]
        row += [_cell_text(tt.cells[c].get(e.key), tt.marks[c].get(e.key, "")) for c in columns]
        rows.append(row)
    headers = ["method", "config", "n", *(_header(c) for c in columns)]
    return tabulate(rows, headers=headers, tablefmt="pipe", disable_numparse=True,
                    colalign=("left", "left", *("right",) * (len(headers) - 2)))


def _m_text(comparisons: dict[str, int]) -> str:
    ms = sorted(set(comparisons.values()) - {0})
    if not ms:
        return f"over the comparisons of a column (none here: fewer than 2 methods with >= {MIN_SEEDS} seeds)"
    if len(ms) == 1:
        return f"over the {ms[0]} pairwise comparison{'' if ms[0] == 1 else 's'} of that column"
    return f"over the pairwise comparisons of that column (m = {ms[0]}-{ms[-1]})"


def _queries_text(tt: TaskTable) -> str:
    parts = []
    for prefix, scope in tt.scopes.items():
        text = f"{scope.n_queries} ({prefix}), eval set {scope.digest[:8] if scope.digest else 'not recorded'}"
        if scope.groups is not None:
            sizes = np.bincount(scope.groups)
            name = tt.layout.query_group or "as recorded"
            weighted = ", group-weighted" if sizes.min() != sizes.max() else ""
            text += f"; query groups: {name} ({scope.n_units} groups{weighted})"
        elif tt.layout.query_group:
            text += f"; query groups ({tt.layout.query_group}) not recorded: queries treated as independent"
        parts.append(text)
    return "; ".join(parts)


def _power_text(tt: TaskTable, columns: Sequence[str]) -> str:
    """The smallest detectable difference of the primary (else first tested) column of the table."""
    tested = [c for c in columns if c in tt.detectable]
    if not tested:
        return "Power: no column has two methods with >= 3 seeds; nothing was tested."
    col = tt.layout.primary if tt.layout.primary in tested else tested[0]
    lo, hi = tt.detectable[col]
    size = f"{lo:.1f}" if f"{lo:.1f}" == f"{hi:.1f}" else f"{lo:.1f}-{hi:.1f}"
    return (f"Power: at this size (seeds x queries, observed variance components) a difference to the bold entry of "
            f"{size} in {_header(col)} is detected with {POWER:.0%} probability (two-sided alpha = {ALPHA} before "
            "the multiplicity adjustment); smaller true differences may go unmarked.")


def render_task_footnote(tt: TaskTable, correction: str, columns: Sequence[str] | None = None) -> str:
    """The footnote of docs/statistics.md 7.2 under one task table (columns: those shown, default the compact ones)."""
    columns = list(tt.compact if columns is None else columns)
    has_median = any(metric_def(split_metric(c)[1]).is_median for c in columns)
    lines = ["Cells: mean over successful seeds ± half-width of the 95% CI (seed x query variance model, "
             "Student t, Welch-Satterthwaite df)."
             + (" MdR: mean of per-seed medians [95% two-level bootstrap percentile interval]." if has_median else "")]
    comparisons = {c: m for c, m in tt.comparisons.items() if c in columns}
    lines.append(
        f"Bold: best in the column among methods with >= {MIN_SEEDS} seeds. †: not significantly worse than the "
        "bold entry. No mark: significantly worse. The test asks whether two configurations have equal expected "
        "performance over the population of queries and training seeds (paired crossed-design t-test: queries "
        f"paired, seed variance included; two-sided; every pair of tested methods, {CORRECTIONS[correction]}-"
        f"adjusted {_m_text(comparisons)}, controlling the {CONTROLS[correction]} even though the best is chosen "
        f"from the data; alpha = {ALPHA})."
    )
    lines.append(f"‡: not tested (fewer than {MIN_SEEDS} successful seeds"
                 + ("; MdR is never tested" if has_median else "") + "). Columns are separate families.")
    above = sorted({f"{label} in {_header(c)}" for c in columns for label in tt.above_bold.get(c, [])})
    if above:
        lines.append("Untested entries above the bold one (too few seeds to test): " + ", ".join(above) + ".")
    lines.append(_power_text(tt, columns))
    if tt.invalid:
        counts = ", ".join(f"{m} {k}" for m, k in tt.invalid.items())
        lines.append(f"Invalid files (unreadable or failing validation; in no row, see `validate`): {counts}.")
    lines.append(f"n: successful/total runs; failed runs are excluded from the cells and counted here. "
                 f"Queries: {_queries_text(tt)}.")
    lines.append("Config: tuned (selected on validation), default (the method's paper defaults) or ad hoc "
                 "(the settings that differ from the defaults).")
    failed = [f"{e.label} seed {r.seed} (failed: {(r.error or '')[:60]})" for e in tt.entities for r in e.failed]
    other = [f"{e.label} seed {r.seed} ({prefix}: {why})" for prefix, s in tt.scopes.items()
             for r, why in s.left_out for e in tt.entities if (e.method, e.config_hash) == (r.method, r.config_hash)]
    if failed or other:
        lines.append("Left out: " + "; ".join(failed + other) + ".")
    if other:
        lines.append("Eval sets: per metric prefix the reference is the eval set shared by most successful runs "
                     "(ties: the smallest digest); runs on another eval set are left out, as listed.")
    unverified = sorted({label for s in tt.scopes.values() for label in s.unverified})
    if unverified:
        lines.append("Query identity not verified: " + ", ".join(unverified) + ".")
    if tt.layout.note:
        lines.append(tt.layout.note + ".")
    lines.append(f"Stats protocol v{PROTOCOL_VERSION}; resampling: numpy PCG64, seed {STATS_SEED}, "
                 f"{N_RESAMPLES:,} resamples.")
    return "\n".join(lines)


# --- ranking across tasks -------------------------------------------------------------------------


@dataclass(frozen=True)
class Pick:
    """The config of a method used for the cross-task ranking on one task."""

    column: str
    entity: Entity
    cell: CellStats
    higher_is_better: bool


def _picks(tables: list[TaskTable]) -> dict[str, dict[str, Pick]]:
    """task -> method -> its entry on the primary metric: the tuned configuration, else the defaults."""
    out: dict[str, dict[str, Pick]] = {}
    for tt in tables:
        col = tt.layout.primary
        if col not in tt.cells:
            continue
        mdef = metric_def(split_metric(col)[1])
        chosen: dict[str, Pick] = {}
        for method in sorted({e.method for e in tt.entities}):
            entry = entry_of([e for e in tt.entities if e.method == method and e.key in tt.cells[col]])
            if entry is not None:
                chosen[method] = Pick(col, entry, tt.cells[col][entry.key], mdef.higher_is_better)
        out[tt.layout.task] = chosen
    return out


def _signed_scores(pick: Pick) -> np.ndarray:
    """Per-seed primary-metric values, negated for lower-is-better metrics."""
    return pick.cell.per_seed if pick.higher_is_better else -pick.cell.per_seed


@dataclass(frozen=True)
class Ranking:
    """Mean ranks of the methods that have >= MIN_SEEDS seeds on every task."""

    tasks: list[str]
    picks: dict[str, dict[str, Pick]]
    methods: list[str]  # ranked, best mean rank first (ties by name)
    ranks: np.ndarray  # [tasks, methods], columns in `methods` order
    missing: dict[str, list[str]]  # unranked method -> tasks where it lacks seeds or an entry

    @property
    def mean_ranks(self) -> np.ndarray:
        """Mean rank per ranked method."""
        return self.ranks.mean(axis=0)

    def signed(self, method: str) -> np.ndarray:
        """Primary score per task of a method, higher is better."""
        return np.array([float(np.mean(_signed_scores(self.picks[t][method]))) for t in self.tasks])


def rank_methods(tables: list[TaskTable]) -> Ranking:
    """Rank each task's primary metric (docs/statistics.md 6.1), tasks in the given (suite) order."""
    picks = _picks(tables)
    tasks = [tt.layout.task for tt in tables if tt.layout.task in picks]
    methods = sorted({m for p in picks.values() for m in p})
    missing = {m: [t for t in tasks if m not in picks[t] or picks[t][m].cell.n_seeds < MIN_SEEDS] for m in methods}
    ranked = [m for m in methods if not missing[m]]
    if len(ranked) < 2:
        return Ranking(tasks, picks, ranked, np.zeros((len(tasks), len(ranked))), {m: v for m, v in missing.items() if v})
    scores = np.array([[picks[t][m].cell.value for m in ranked] for t in tasks])
    ranks = task_ranks(scores, [picks[t][ranked[0]].higher_is_better for t in tasks])
    order = sorted(range(len(ranked)), key=lambda i: (ranks[:, i].mean(), ranked[i]))
    return Ranking(tasks, picks, [ranked[i] for i in order], ranks[:, order], {m: v for m, v in missing.items() if v})


def _poi_text(rk: Ranking, x: str, n_resamples: int) -> str:
    top = rk.methods[0]
    res = probability_of_improvement(
        [_signed_scores(rk.picks[t][x]) for t in rk.tasks], [_signed_scores(rk.picks[t][top]) for t in rk.tasks],
        rk.tasks, [rk.picks[t][x].entity.key for t in rk.tasks], [rk.picks[t][top].entity.key for t in rk.tasks],
        n_resamples)
    return f"{res.value:.2f} [{res.low:.2f}, {res.high:.2f}]"


def _ranking_text(rk: Ranking, poi: bool) -> str:
    """The text under the cross-task table (docs/statistics.md 7.3)."""
    n, k = len(rk.tasks), len(rk.methods)
    primaries = ", ".join(f"{rk.picks[t][rk.methods[0]].column} ({t})" for t in rk.tasks)
    text = [f"Mean rank of {primaries} over {n} task{'s' if n != 1 else ''} (1 = best, ties averaged)."]
    if n < 2:
        text.append("Mean ranks only (fewer than 2 tasks): no test.")
    elif k == 2:
        p = wilcoxon_p(rk.signed(rk.methods[0]) - rk.signed(rk.methods[1]))
        text.append("No score differences: no test." if np.isnan(p) else
                    f"Wilcoxon signed-rank test on the per-task differences ({rk.methods[0]} - {rk.methods[1]}): "
                    f"p = {fmt_p(p)}; no critical difference for k = 2.")
    else:
        omni = friedman_iman_davenport(rk.ranks)
        perm = friedman_permutation_p(rk.ranks)
        if omni.no_differences:
            text.append("No rank differences: every task is fully tied; no test.")
        else:
            how = ("exact permutation p over every within-task reordering" if perm.exact else
                   f"Monte Carlo permutation p, {perm.n_resamples:,} within-task reorderings, (b + 1) / (R + 1)")
            text.append(f"Friedman chi2_F = {omni.chi2:.3f} (tie-corrected), p = {fmt_p(perm.p)} ({how}).")
            if n >= ID_MIN_TASKS and np.isfinite(omni.f):
                text.append(f"Iman-Davenport F({omni.df1}, {omni.df2}) = {omni.f:.3f}, approximate p = {fmt_p(omni.p)}.")
        text.append(f"Nemenyi CD (alpha = {ALPHA}, k = {k}, N = {n}) = {critical_difference(k, n):.2f}; methods "
                    "whose mean ranks differ by at least CD differ significantly; connected methods in the diagram "
                    "do not.")
        if omni.no_differences or perm.p >= ALPHA:
            text.append(f"The omnibus test is not significant at alpha = {ALPHA}: the diagram is descriptive only.")
    text.append("Entries: each method's tuned configuration (selected on validation), else its default "
                "configuration; ad hoc configurations are shown in the task tables but never ranked.")
    used = [f"{m} {rk.picks[t][m].entity.config_text} on {t}" for t in rk.tasks for m in rk.methods
            if rk.picks[t][m].entity.kind != "default"]
    if used:
        text.append("Entries that are not the defaults: " + ", ".join(used) + ".")
    if poi:
        text.append(f"P(> top): probability that a seed of the method beats a seed of {rk.methods[0]} on the primary "
                    "metric, averaged over tasks [95% stratified bootstrap percentile interval]; descriptive, not a test.")
    return "\n".join(text)


def render_ranking(tables: list[TaskTable], poi: bool, cd_path: Path | None, n_resamples: int = N_RESAMPLES) -> str:
    """Cross-task table, omnibus test, CD and the diagram link (docs/statistics.md 6 and 7.3)."""
    rk = rank_methods(tables)
    if not rk.tasks:
        return "No task has results on its primary metric: no ranking."
    lines = []
    if len(rk.methods) < 2:
        lines.append(f"No ranking: fewer than 2 methods have an entry with >= {MIN_SEEDS} successful seeds on every "
                     "task.")
    else:
        headers = ["method", "mean rank", "tasks"] + (["P(> top) [lo, hi]"] if poi else [])
        rows = []
        for i, m in enumerate(rk.methods):
            poi_cell = [DASH if i == 0 else _poi_text(rk, m, n_resamples)] if poi else []
            rows.append([m, f"{rk.mean_ranks[i]:.2f}", str(len(rk.tasks)), *poi_cell])
        lines += [tabulate(rows, headers=headers, tablefmt="pipe", disable_numparse=True,
                           colalign=("left", *("right",) * (len(headers) - 1))), "", _ranking_text(rk, poi)]
        if len(rk.methods) >= 3 and len(rk.tasks) >= 2 and cd_path is not None:
            from pmrl_bench.report.cdplot import draw_cd_diagram

            cd = critical_difference(len(rk.methods), len(rk.tasks))
            draw_cd_diagram(rk.methods, rk.mean_ranks, cd, cd_path)
            lines += ["", f"![Critical difference diagram]({cd_path.name})"]
    if rk.missing:
        unranked = "; ".join(f"{m} (missing: {', '.join(ts)})" for m, ts in rk.missing.items())
        lines += ["", f"Not ranked (no tuned or default entry with >= {MIN_SEEDS} successful seeds on a task): "
                  f"{unranked}."]
    return "\n".join(lines)


# --- the document ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Board:
    """The statistics of every task, split into the suite's tasks (ranked) and the others."""

    suite: Suite
    suite_tables: list[TaskTable]
    other_tables: list[TaskTable]
    missing: list[str]  # suite tasks without results (only when the suite was not named)

    @property
    def tables(self) -> list[TaskTable]:
        """Suite tasks first (suite order), then the others by name."""
        return self.suite_tables + self.other_tables


def resolve_suite(table: RunTable, name: str | None) -> tuple[Suite, list[str]]:
    """The suite to rank (default when not named) and its tasks without results; a named one must have them all."""
    suite = load_suite(name or DEFAULT_SUITE)
    missing = [t for t in suite.primaries if t not in table.tasks()]
    if missing and name is not None:
        raise BenchError(f"suite {suite.name} names task(s) without results in this folder: {', '.join(missing)} "
                         "(run them, or pick another suite with --suite)")
    return suite, missing


def build_leaderboard(table: RunTable, choices: dict[str, str], correction: str, n_resamples: int = N_RESAMPLES,
                      warn: Callable[[str], None] = _warn, suite_name: str | None = None,
                      cache: StatsCache | None = None) -> Board:
    """The statistics of every task in the table, the suite's tasks on the suite's primary metrics."""
    suite, missing = resolve_suite(table, suite_name)
    present = [t for t in suite.primaries if t in table.tasks()]
    ranked = [build_task_table(table, t, choices, correction, n_resamples, warn, suite.primaries[t], cache)
              for t in present]
    others = [build_task_table(table, t, choices, correction, n_resamples, warn, None, cache)
              for t in table.tasks() if t not in suite.primaries]
    return Board(suite, ranked, others, missing)


def task_page_dir(out: Path) -> Path:
    """The folder of the per-task pages next to the leaderboard file."""
    return out.with_name(f"{out.stem}_tasks")


def _task_section(tt: TaskTable, correction: str, page: str | None) -> list[str]:
    """The compact table of one task with its footnote and the link to its full page."""
    if not tt.cells:
        return ["No successful runs with per-query outcomes."]
    lines = []
    if tt.layout.primary:
        direction = metric_def(split_metric(tt.layout.primary)[1]).direction
        link = f" Every metric: [{tt.layout.task} page]({page})." if page else ""
        lines += [f"Primary metric: `{tt.layout.primary}` ({direction}).{link}", ""]
    hidden = len(tt.entities) - len(compact_entities(tt))
    more = [f"{hidden} more ad hoc configuration(s) with fewer than {MIN_SEEDS} seeds (tuning selection runs, "
            f"exploratory runs) are listed on the {f'[task page]({page})' if page else 'task page'}.", ""] if hidden else []
    return lines + [render_task_table(tt), "", *more, render_task_footnote(tt, correction)]


def render_task_page(tt: TaskTable, correction: str) -> str:
    """The per-task page: the full metric grid with its footnote."""
    head = [f"# {tt.layout.task}: every metric", "", "Regenerated by `python -m pmrl_bench leaderboard`; "
            "do not edit by hand. Marks and footnotes as in the leaderboard.", ""]
    if not tt.cells:
        return "\n".join([*head, "No successful runs with per-query outcomes."]) + "\n"
    columns = full_columns(tt)
    return "\n".join([*head, render_task_table(tt, columns), "", render_task_footnote(tt, correction, columns)]) + "\n"


def _robustness(tt: TaskTable, out: Path) -> list[str]:
    """The task's robustness section and plot next to `out`, when its records have corruption levels."""
    plot = out.with_name(f"{out.stem}_robustness_{tt.layout.task}.png")
    plot.unlink(missing_ok=True)  # redrawn only when the task has robustness levels
    if tt.cells and tt.layout.primary and (section := robustness_section(tt.entities, tt.layout.primary, plot)):
        return ["", *section]
    return []


def _warm_start(tt: TaskTable) -> list[str]:
    """The task's section testing each method against its own warm start, when its records store one."""
    if tt.cells and tt.layout.primary and (section := warm_start_section(tt.entities, tt.layout.primary)):
        return ["", *section]
    return []


def render_leaderboard(table: RunTable, board: Board, correction: str, poi: bool, out: Path,
                       n_resamples: int = N_RESAMPLES) -> str:
    """The whole Markdown document (and the CD diagram next to `out`)."""
    n_ok = sum(r.ok for r in table.runs)
    doc = [
        "# pmrl_bench leaderboard",
        "",
        "Regenerated from the result files by `python -m pmrl_bench leaderboard`; do not edit by hand.",
        f"{table.n_files} result files: {n_ok} successful runs, {len(table.runs) - n_ok} failed, "
        f"{len(table.problems)} invalid (skipped; see `python -m pmrl_bench validate`).",
        "",
        HOW_TO_READ.format(min_seeds=MIN_SEEDS),
    ]
    pages = task_page_dir(out).name
    for tt in board.suite_tables:
        doc += ["", f"## {tt.layout.task}", "", *_task_section(tt, correction, f"{pages}/{tt.layout.task}.md"),
                *_robustness(tt, out), *_warm_start(tt)]
    cd_path = out.with_name(f"{out.stem}_cd.png")
    cd_path.unlink(missing_ok=True)  # redrawn below only when the ranking has one; never left stale
    tasks = ", ".join(board.suite.primaries)
    doc += ["", "## Across tasks", "", f"Suite `{board.suite.name}` ({tasks}); tasks outside the suite are listed "
            "below and never change this ranking."]
    if board.missing:
        doc.append(f"Suite tasks without results here (ranked over the others): {', '.join(board.missing)}.")
    doc += ["", render_ranking(board.suite_tables, poi, cd_path, n_resamples)]
    for tt in board.other_tables:
        doc += ["", f"## {tt.layout.task} (not in suite `{board.suite.name}`)", "",
                *_task_section(tt, correction, f"{pages}/{tt.layout.task}.md"), *_robustness(tt, out),
                *_warm_start(tt)]
    return "\n".join(doc) + "\n"


def write_task_pages(board: Board, correction: str, out: Path) -> None:
    """Write one full-grid page per task next to the leaderboard, and drop stale ones."""
    folder = task_page_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    keep = {f"{tt.layout.task}.md" for tt in board.tables}
    for old in folder.glob("*.md"):
        if old.name not in keep:
            old.unlink()
    for tt in board.tables:
        atomic_write_text(folder / f"{tt.layout.task}.md", render_task_page(tt, correction))


def stats_cache(root: Path, args: argparse.Namespace) -> StatsCache:
    """The statistics cache under <results-dir>/.cache/stats, or none with --no-cache."""
    return StatsCache(None if getattr(args, "no_cache", False) else root / CACHE_DIR, _warn)


def load_table(root: Path) -> RunTable:
    """The valid runs under root, warning about invalid files; refused when there are none."""
    table = load_runs(root) if root.is_dir() else None
    if table is None or table.n_files == 0:
        raise BenchError(f"no result files under {root}/ (write some with `python -m pmrl_bench run --method ...`)")
    for problem in table.problems:
        _warn(f"warning: skipping {problem.path}: {problem.reason}")
    if not table.runs:
        raise BenchError(f"no valid result files under {root}/ ({len(table.problems)} invalid; see `validate`)")
    return table


def cli_leaderboard(args: argparse.Namespace) -> int:
    """Regenerate <results-dir>/LEADERBOARD.md (its task pages and CD diagram), or print/write another format."""
    from pmrl_bench.report.formats import FORMATS, render_format

    root = Path(args.results_dir)
    fmt = getattr(args, "format", "md")
    if fmt not in FORMATS:
        raise unknown_name("format", fmt, FORMATS, "(--format)")
    out = Path(args.out) if args.out else (root / "LEADERBOARD.md" if fmt == "md" else None)
    if out is not None:
        check_output_path(out, "--out", root)
    table = load_table(root)
    choices = parse_config_choices(args.config)
    check_config_choices(table.runs, choices)
    board = build_leaderboard(table, choices, args.correction, suite_name=getattr(args, "suite", None),
                              cache=stats_cache(root, args))
    if fmt != "md":
        text = render_format(fmt, table, board, args.correction)
        if out is None:
            sys.stdout.write(text)
            return 0
        atomic_write_text(out, text)
        print(f"wrote {out} ({fmt}, {len(board.tables)} task(s))")
        return 0
    atomic_write_text(out, render_leaderboard(table, board, args.correction, args.poi, out))
    write_task_pages(board, args.correction, out)
    left_out = sum(len(s.left_out) for tt in board.tables for s in tt.scopes.values())
    print(f"wrote {out} ({len(board.tables)} task(s), {len(table.runs)} valid run(s)); skipped "
          f"{len(table.problems)} invalid file(s) and {left_out} run(s) on another eval set")
    return 0
