"""Leaderboard robustness section: the primary metric vs noise level per method, its area with CIs, paired tests, plot."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tabulate import tabulate

from pmrl_bench.files import atomic_write_bytes
from pmrl_bench.report.stats.multiple import adjust
from pmrl_bench.report.stats.outcomes import metric_def, per_query_values, split_metric
from pmrl_bench.report.stats.paired import crossed_t_tests, mean_interval, seed_query_parts
from pmrl_bench.results.table import Entity

NOISE = re.compile(r"^(?P<direction>[^./]+)\.noise(?P<level>[0-9.eE+-]+)$")


@dataclass
class Curve:
    """One entity's metric per level (clean = level 0) with CI half-widths, its area and the missing-modality value."""

    label: str
    levels: np.ndarray
    value: np.ndarray
    half: np.ndarray
    area_parts: object
    missing: tuple[float, float] | None


def noise_levels(entity: Entity, direction: str) -> list[float]:
    """Noise levels recorded for `direction` in every run of the entity (empty if the runs disagree)."""
    sets = [
        sorted(float(m["level"]) for p in run.outcomes if (m := NOISE.match(p)) and m["direction"] == direction)
        for run in entity.runs if run.ok
    ]
    return sets[0] if sets and all(s == sets[0] for s in sets) else []


def _outcomes(entity: Entity, prefix: str) -> np.ndarray | None:
    """[S, Nq] outcomes of one prefix over the entity's ok runs (None if a run lacks it or sizes differ)."""
    rows = [run.outcomes.get(prefix) for run in entity.runs if run.ok]
    if not rows or any(r is None for r in rows) or len({len(r[1]) for r in rows}) != 1:
        return None
    return np.stack([r[1] for r in rows])


def area_under(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Trapezoid area under values[..., L] over `levels`, divided by the level range (the curve's mean height)."""
    widths = np.diff(levels)
    heights = (values[..., 1:] + values[..., :-1]) / 2
    return (heights * widths).sum(-1) / (levels[-1] - levels[0])


def entity_curve(entity: Entity, direction: str, metric: str) -> Curve | None:
    """The robustness curve of one entity on `direction` under `metric` (None without noise levels)."""
    levels = noise_levels(entity, direction)
    if not levels:
        return None
    grid = sorted({0.0, *levels})
    prefixes = [direction if lv == 0.0 and 0.0 not in levels else f"{direction}.noise{lv:g}" for lv in grid]
    arrays = [_outcomes(entity, p) for p in prefixes]
    if any(a is None for a in arrays) or len({a.shape for a in arrays}) != 1:
        return None
    mdef = metric_def(metric)
    y = per_query_values(mdef, np.stack(arrays, -1))  # [S, Nq, L]
    lv = np.asarray(grid)
    per_level = mean_interval(seed_query_parts(y))
    area = seed_query_parts(area_under(y, lv))
    missing = _outcomes(entity, f"{direction}.missing")
    miss = None
    if missing is not None:
        interval = mean_interval(seed_query_parts(per_query_values(mdef, missing)))
        miss = (float(interval.value), float(interval.half_width))
    return Curve(entity.label, lv, per_level.value, per_level.half_width, area, miss)


def robustness_section(entities: Sequence[Entity], primary: str, plot_path: Path) -> list[str]:
    """Markdown lines of the section (empty when no entity has noise levels); writes the plot to `plot_path`."""
    direction, metric = split_metric(primary)
    mdef = metric_def(metric)
    if mdef is None or mdef.is_median:
        return []
    curves = [c for e in entities if (c := entity_curve(e, direction, metric)) is not None]
    shapes = {(tuple(c.levels), c.area_parts.n_units) for c in curves}
    if not curves or len(shapes) != 1:
        return []
    areas = {c.label: mean_interval(c.area_parts) for c in curves}
    sign = 1.0 if mdef.higher_is_better else -1.0
    best = max(curves, key=lambda c: sign * float(areas[c.label].value))
    others = [c for c in curves if c is not best]
    p_adj: dict[str, float] = {}
    if others and best.area_parts.n_seeds >= 1:
        test = crossed_t_tests(best.area_parts, [c.area_parts for c in others])
        p_adj = dict(zip([c.label for c in others], adjust(np.asarray(test.p, dtype=np.float64)), strict=True))
    header = ["method", *(f"{lv:g}" for lv in best.levels), "missing", "area (95% CI)", "p vs best (Holm)"]
    rows = []
    for c in curves:
        a = areas[c.label]
        cells = [f"{v:.1f} ± {h:.1f}" for v, h in zip(c.value, c.half, strict=True)]
        miss = "" if c.missing is None else f"{c.missing[0]:.1f} ± {c.missing[1]:.1f}"
        p = "best" if c is best else f"{p_adj[c.label]:.2g}"
        rows.append([c.label, *cells, miss, f"{float(a.value):.1f} ± {float(a.half_width):.1f}", p])
    write_plot(curves, primary, plot_path)
    return [
        f"### Robustness: `{primary}` vs noise level", "",
        f"Noise level = multiple of each feature's standard deviation added at test to the corrupted modality "
        f"(the record's `protocol.robustness`); values ± 95% CI half-width over seeds and queries; area = mean "
        f"height of the metric-vs-level curve; p = crossed seed x query paired t-test of the per-query areas "
        f"against the best, Holm-adjusted. Plot: `{plot_path.name}`.", "",
        tabulate(rows, header, tablefmt="github"),
    ]


def write_plot(curves: Sequence[Curve], primary: str, path: Path) -> None:
    """Metric vs level per method with 95% CI bands, written atomically as PNG."""
    fig = Figure(figsize=(5.0, 3.4), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for c in curves:
        (line,) = ax.plot(c.levels, c.value, marker="o", label=c.label)
        ax.fill_between(c.levels, c.value - c.half, c.value + c.half, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("noise level (x feature std)")
    ax.set_ylabel(primary)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    atomic_write_bytes(path, buffer.getvalue())
