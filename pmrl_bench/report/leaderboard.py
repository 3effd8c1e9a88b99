"""`leaderboard`: per-task significance-tested tables and the cross-task ranking, as Markdown (docs/statistics.md 7)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tabulate import tabulate

from pmrl_bench.errors import BenchError
from pmrl_bench.files import atomic_write_text
from pmrl_bench.outputs import check_output_path
from pmrl_bench.report.robustness import robustness_section
from pmrl_bench.report.stats import ALPHA, MIN_SEEDS, N_RESAMPLES, PROTOCOL_VERSION, STATS_SEED
from pmrl_bench.report.stats.best import column_verdict
from pmrl_bench.report.stats.bootstrap import BootstrapInput, percentile_interval, two_level_bootstrap
from pmrl_bench.report.stats.multiple import CONTROLS, CORRECTIONS
from pmrl_bench.report.stats.outcomes import metric_def, per_query_values, split_metric, unit_means
from pmrl_bench.report.stats.paired import SeedQueryParts, mean_interval, seed_query_parts
from pmrl_bench.report.stats.ranking import (
    critical_difference,
    friedman_iman_davenport,
    probability_of_improvement,
    task_ranks,
    wilcoxon_p,
)
from pmrl_bench.results.table import (
    Entity,
    RunTable,
    Scope,
    TaskLayout,
    build_scope,
    check_config_choices,
    load_runs,
    parse_config_choices,
    task_entities,
    task_layout,
)

LOG = logging.getLogger(__name__)

DASH = "–"


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
        elif not eligible[i]:
            marks[e.key] = "‡"
        elif not mdef.is_median:
            marks[e.key] = "†" if verdict.adjusted_p[i] >= ALPHA else ""
        else:
            marks[e.key] = ""
    return marks, (None if mdef.is_median else verdict.n_comparisons)


def build_task_table(table: RunTable, task: str, choices: dict[str, str], correction: str,
                     n_resamples: int = N_RESAMPLES, warn: Callable[[str], None] = _warn) -> TaskTable:
    """Statistics of one task: scopes per prefix, cells per column, marks per column."""
    layout = task_layout(task, table.runs)
    if layout.note:
        warn(f"warning: {task}: {layout.note}")
    entities = task_entities(table.runs, task, choices)
    by_prefix: dict[str, list[str]] = {}
    for column in layout.columns:
        prefix, name = split_metric(column)
        by_prefix.setdefault(prefix, []).append(name)
    scopes, cells, marks, comparisons = {}, {}, {}, {}
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
        for name, per_entity in scope_cells(scope, names, n_resamples).items():
            column = f"{prefix}/{name}"
            cells[column] = per_entity
            marks[column], m = _column_marks(column, per_entity, entities, correction)
            if m is not None:
                comparisons[column] = m
    return TaskTable(layout, entities, scopes, cells, marks, comparisons)


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


def render_task_table(tt: TaskTable) -> str:
    """The Markdown table of one task."""
    columns = [c for c in tt.layout.columns if c in tt.cells]
    rows = []
    for e in _row_order(tt):
        n_ok = sum(r.ok for r in e.runs)
        row = [e.label, f"{n_ok}/{len(e.runs)}"]
        row += [_cell_text(tt.cells[c].get(e.key), tt.marks[c].get(e.key, "")) for c in columns]
        rows.append(row)
    headers = ["method", "n", *(_header(c) for c in columns)]
    return tabulate(rows, headers=headers, tablefmt="pipe", disable_numparse=True,
                    colalign=("left", *("right",) * (len(headers) - 1)))


def _m_text(comparisons: dict[str, int]) -> str:
    ms = sorted(set(comparisons.values()) - {0})
    if not ms:
        return f"over the comparisons of a column (none here: fewer than 2 methods with >= {MIN_SEEDS} seeds)"
    if len(ms) == 1:
        return f"over the {ms[0]} comparison{'' if ms[0] == 1 else 's'} of that column"
    return f"over the comparisons of that column (m = {ms[0]}-{ms[-1]})"


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


def render_task_footnote(tt: TaskTable, correction: str) -> str:
    """The footnote of docs/statistics.md 7.2 under one task table."""
    has_median = any(metric_def(split_metric(c)[1]).is_median for c in tt.cells)
    lines = ["Cells: mean over successful seeds ± half-width of the 95% CI (seed x query variance model, "
             "Student t, Welch-Satterthwaite df)."
             + (" MdR: mean of per-seed medians [95% two-level bootstrap percentile interval]." if has_median else "")]
    lines.append(
        f"Bold: best in the column among methods with >= {MIN_SEEDS} seeds. †: not significantly worse than the "
        "bold entry (paired crossed-design t-test: queries paired, seed variance included; two-sided; "
        f"{CORRECTIONS[correction]}-adjusted {_m_text(tt.comparisons)}, controlling the {CONTROLS[correction]}; "
        f"alpha = {ALPHA}). No mark: significantly worse."
    )
    lines.append(f"‡: not tested (fewer than {MIN_SEEDS} successful seeds)."
                 + (" MdR is not tested." if has_median else "") + " Columns are separate families.")
    lines.append(f"n: successful/total runs. Queries: {_queries_text(tt)}.")
    failed = [f"{e.label} seed {r.seed} (failed: {(r.error or '')[:60]})" for e in tt.entities for r in e.failed]
    other = [f"{e.label} seed {r.seed} ({prefix}: {why})" for prefix, s in tt.scopes.items()
             for r, why in s.left_out for e in tt.entities if (e.method, e.config_hash) == (r.method, r.config_hash)]
    if failed or other:
        lines.append("Left out: " + "; ".join(failed + other) + ".")
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
    """task -> method -> its config with most seeds on the primary metric (ties: smallest hash)."""
    out: dict[str, dict[str, Pick]] = {}
    for tt in tables:
        col = tt.layout.primary
        if col not in tt.cells:
            continue
        mdef = metric_def(split_metric(col)[1])
        best: dict[str, Pick] = {}
        for e in sorted(tt.entities, key=lambda e: e.config_hash):
            cell = tt.cells[col].get(e.key)
            if cell is not None and (e.method not in best or cell.n_seeds > best[e.method].cell.n_seeds):
                best[e.method] = Pick(col, e, cell, mdef.higher_is_better)
        out[tt.layout.task] = best
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
    missing: dict[str, list[str]]  # unranked method -> tasks where it lacks seeds

    @property
    def mean_ranks(self) -> np.ndarray:
        """Mean rank per ranked method."""
        return self.ranks.mean(axis=0)

    def signed(self, method: str) -> np.ndarray:
        """Primary score per task of a method, higher is better."""
        return np.array([float(np.mean(_signed_scores(self.picks[t][method]))) for t in self.tasks])


def rank_methods(tables: list[TaskTable]) -> Ranking:
    """Rank each task's primary metric (docs/statistics.md 6.1)."""
    picks = _picks(tables)
    tasks = sorted(picks)
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
        if omni.no_differences:
            text.append("No rank differences: every task is fully tied; no test.")
        else:
            text.append(f"Friedman chi2_F = {omni.chi2:.3f} (tie-corrected); Iman-Davenport F({omni.df1}, {omni.df2}) "
                        f"= {omni.f:.3f}, p = {fmt_p(omni.p)}.")
        text.append(f"Nemenyi CD (alpha = {ALPHA}, k = {k}, N = {n}) = {critical_difference(k, n):.2f}; methods "
                    "whose mean ranks differ by at least CD differ significantly; connected methods in the diagram "
                    "do not.")
        if omni.no_differences or omni.p >= ALPHA:
            text.append(f"The omnibus test is not significant at alpha = {ALPHA}: the diagram is descriptive only.")
    several = [f"{m} [{rk.picks[t][m].entity.config_hash[:8]}] on {t}" for t in rk.tasks for m in rk.methods
               if rk.picks[t][m].entity.label != m]
    if several:
        text.append("Config used where a method has several (most seeds): " + ", ".join(several) + ".")
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
        lines.append(f"No ranking: fewer than 2 methods have >= {MIN_SEEDS} successful seeds on every task.")
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
        lines += ["", f"Not ranked (fewer than {MIN_SEEDS} successful seeds on a task): {unranked}."]
    return "\n".join(lines)


# --- the document ---------------------------------------------------------------------------------


def build_leaderboard(table: RunTable, choices: dict[str, str], correction: str, n_resamples: int = N_RESAMPLES,
                      warn: Callable[[str], None] = _warn) -> list[TaskTable]:
    """The statistics of every task in the table."""
    return [build_task_table(table, t, choices, correction, n_resamples, warn) for t in table.tasks()]


def render_leaderboard(table: RunTable, tables: list[TaskTable], correction: str, poi: bool, out: Path,
                       n_resamples: int = N_RESAMPLES) -> str:
    """The whole Markdown document (and the CD diagram next to `out`)."""
    n_ok = sum(r.ok for r in table.runs)
    doc = [
        "# pmrl_bench leaderboard",
        "",
        "Regenerated from the result files by `python -m pmrl_bench leaderboard`; do not edit by hand.",
        f"{table.n_files} result files: {n_ok} successful runs, {len(table.runs) - n_ok} failed, "
        f"{len(table.problems)} invalid (skipped; see `python -m pmrl_bench validate`).",
    ]
    for tt in tables:
        doc += ["", f"## {tt.layout.task}", ""]
        if not tt.cells:
            doc.append("No successful runs with per-query outcomes.")
            continue
        if tt.layout.primary:
            direction = metric_def(split_metric(tt.layout.primary)[1]).direction
            doc += [f"Primary metric: `{tt.layout.primary}` ({direction}).", ""]
        doc += [render_task_table(tt), "", render_task_footnote(tt, correction)]
        plot = out.with_name(f"{out.stem}_robustness_{tt.layout.task}.png")
        plot.unlink(missing_ok=True)  # redrawn only when the task has robustness levels
        if tt.layout.primary and (section := robustness_section(tt.entities, tt.layout.primary, plot)):
            doc += ["", *section]
    cd_path = out.with_name(f"{out.stem}_cd.png")
    cd_path.unlink(missing_ok=True)  # redrawn below only when the ranking has one; never left stale
    doc += ["", "## Across tasks", "", render_ranking(tables, poi, cd_path, n_resamples)]
    return "\n".join(doc) + "\n"


def cli_leaderboard(args: argparse.Namespace) -> int:
    """Regenerate <results-dir>/LEADERBOARD.md (and its CD diagram) from the result files."""
    root = Path(args.results_dir)
    out = check_output_path(Path(args.out), "--out", root) if args.out else root / "LEADERBOARD.md"
    table = load_runs(root) if root.is_dir() else None
    if table is None or table.n_files == 0:
        raise BenchError(f"no result files under {root}/ (write some with `python -m pmrl_bench run --method ...`)")
    for problem in table.problems:
        _warn(f"warning: skipping {problem.path}: {problem.reason}")
    if not table.runs:
        raise BenchError(f"no valid result files under {root}/ ({len(table.problems)} invalid; see `validate`)")
    choices = parse_config_choices(args.config)
    check_config_choices(table.runs, choices)
    tables = build_leaderboard(table, choices, args.correction)
    atomic_write_text(out, render_leaderboard(table, tables, args.correction, args.poi, out))
    left_out = sum(len(s.left_out) for tt in tables for s in tt.scopes.values())
    print(f"wrote {out} ({len(tables)} task(s), {len(table.runs)} valid run(s)); skipped "
          f"{len(table.problems)} invalid file(s) and {left_out} run(s) on another eval set")
    return 0
