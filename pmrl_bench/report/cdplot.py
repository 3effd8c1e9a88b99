"""Critical-difference diagram of mean ranks (docs/statistics.md 6.4), drawn with matplotlib and written atomically."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pmrl_bench.files import atomic_write_bytes
from pmrl_bench.report.stats.ranking import cliques

WIDTH_IN, DPI = 6.0, 150
FONT_SIZE = 9
CHAR_IN = 0.075  # generous average character width of the default font at FONT_SIZE, in inches
MIN_AXIS_IN = 2.5  # the figure widens beyond WIDTH_IN when long labels leave the axis less than this


def _label(name: str, rank: float) -> str:
    return f"{name} ({rank:.2f})"


def cd_figure(labels: Sequence[str], mean_ranks: np.ndarray, cd: float) -> Figure:
    """The diagram as a matplotlib Figure; labels and mean_ranks in ascending mean-rank order."""
    k = len(labels)
    ranks = np.asarray(mean_ranks, dtype=np.float64)
    groups = cliques(ranks, cd)
    n_left = (k + 1) // 2
    margin_in = 0.3 + CHAR_IN * max(len(_label(name, r)) for name, r in zip(labels, ranks, strict=True))
    width_in = max(WIDTH_IN, 2 * margin_in + MIN_AXIS_IN)
    unit = max(k - 1, 1) / (width_in - 2 * margin_in)  # rank units per inch
    fig = Figure(figsize=(width_in, 1.2 + 0.25 * k), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    ax.set_xlim(1 - margin_in * unit, k + margin_in * unit)
    clique_top = 0.35
    label_top = clique_top + 0.22 * len(groups) + 0.35
    row = 0.5
    ax.set_ylim(label_top + row * (n_left - 1) + 0.5, -1.6)
    # rank axis with ticks, rank 1 on the left
    ax.plot([1, k], [0, 0], color="black", lw=1)
    for tick in range(1, k + 1):
        ax.plot([tick, tick], [0, -0.12], color="black", lw=1)
        ax.text(tick, -0.2, str(tick), ha="center", va="bottom", fontsize=FONT_SIZE)
    # CD bar above the axis
    ax.plot([1, 1 + cd], [-1.0, -1.0], color="black", lw=1.2)
    for end in (1, 1 + cd):
        ax.plot([end, end], [-1.07, -0.93], color="black", lw=1.2)
    ax.text(1 + cd / 2, -1.12, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=FONT_SIZE)
    # cliques: thick lines under the axis (methods not significantly different)
    for level, (i, j) in enumerate(groups):
        y = clique_top + 0.22 * level
        ax.plot([ranks[i] - 0.03, ranks[j] + 0.03], [y, y], color="black", lw=3, solid_capstyle="butt")
    # methods: marker at the mean rank, elbow to the label (better half left, worse half right)
    for i, (name, r) in enumerate(zip(labels, ranks, strict=True)):
        left = i < n_left
        y = label_top + row * (i if left else k - 1 - i)
        x_end = 1 - 0.15 * unit if left else k + 0.15 * unit
        ax.plot([r], [0], marker="o", color="black", ms=4)
        ax.plot([r, r, x_end], [0, y, y], color="black", lw=0.8)
        ax.text(x_end + (-0.05 if left else 0.05) * unit, y, _label(name, r),
                ha="right" if left else "left", va="center", fontsize=FONT_SIZE)
    return fig


def draw_cd_diagram(labels: Sequence[str], mean_ranks: np.ndarray, cd: float, path: Path) -> Path:
    """Draw the diagram to a PNG at `path` (no software metadata, so regeneration is byte-identical)."""
    fig = cd_figure(labels, mean_ranks, cd)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)
