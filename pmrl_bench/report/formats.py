"""`leaderboard --format csv|json|latex|html`: the compact tables of a board in other formats."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from pmrl_bench.report.leaderboard import Board, TaskTable, _header, _row_order, rank_methods
from pmrl_bench.report.stats.outcomes import metric_def, split_metric
from pmrl_bench.results.table import RunTable

FORMATS = ("md", "csv", "json", "latex", "html")
MARK_NAMES = {"**": "best", "†": "not significantly worse", "": "significantly worse", "‡": "not tested"}
FIELDS = ("task", "in_suite", "method", "kind", "regime", "config_label", "config_hash", "n_ok", "n_runs", "metric",
          "direction", "value", "ci_low", "ci_high", "mark")


def cell_rows(board: Board) -> list[dict[str, Any]]:
    """One tidy row per (task, entry, compact column): value, interval and mark in words."""
    rows = []
    for tt in board.tables:
        in_suite = tt in board.suite_tables
        for e in _row_order(tt):
            for column in tt.compact:
                cell = tt.cells[column].get(e.key)
                if cell is None:
                    continue
                if cell.interval is not None:
                    low, high = cell.interval
                elif cell.half_width is not None:
                    low, high = cell.value - cell.half_width, cell.value + cell.half_width
                else:
                    low = high = None
                rows.append({
                    "task": tt.layout.task, "in_suite": in_suite, "method": e.method, "kind": e.kind, "regime": e.regime,
                    "config_label": e.config_label, "config_hash": e.config_hash,
                    "n_ok": sum(r.ok for r in e.runs), "n_runs": len(e.runs), "metric": column,
                    "direction": metric_def(split_metric(column)[1]).direction, "value": round(cell.value, 6),
                    "ci_low": None if low is None else round(low, 6), "ci_high": None if high is None else round(high, 6),
                    "mark": MARK_NAMES[tt.marks[column].get(e.key, "")],
                })
    return rows


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Tidy CSV with a header row (empty cells for missing values)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    return buf.getvalue()


def to_json(board: Board, rows: list[dict[str, Any]]) -> str:
    """The cells and the suite's ranking as one JSON document."""
    rk = rank_methods(board.suite_tables)
    ranking = [{"method": m, "mean_rank": round(float(r), 6)} for m, r in zip(rk.methods, rk.mean_ranks, strict=True)]
    doc = {"suite": board.suite.name, "suite_tasks": list(board.suite.primaries), "ranking": ranking, "cells": rows}
    return json.dumps(doc, indent=1) + "\n"


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$", "{": r"\{", "}": r"\}",
                  "†": r"$^\dagger$", "‡": r"$^\ddagger$", "±": r"$\pm$", "~": r"\textasciitilde{}"}


def _tex(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _tex_cell(tt: TaskTable, column: str, key: str) -> str:
    from pmrl_bench.report.leaderboard import _cell_text

    cell = tt.cells[column].get(key)
    text = _cell_text(cell, tt.marks[column].get(key, ""))
    if text.startswith("**"):
        return r"\textbf{" + _tex(text.strip("*")) + "}"
    return _tex(text)


def to_latex(board: Board) -> str:
    """One booktabs tabular per task (compact columns)."""
    out = []
    for tt in board.tables:
        if not tt.compact:
            continue
        cols = tt.compact
        out += [f"% {tt.layout.task}", r"\begin{tabular}{ll" + "r" * (len(cols) + 1) + "}", r"\toprule",
                " & ".join(["method", "config", "n", *(_tex(_header(c)) for c in cols)]) + r" \\", r"\midrule"]
        for e in _row_order(tt):
            n = f"{sum(r.ok for r in e.runs)}/{len(e.runs)}"
            out.append(" & ".join([_tex(e.label), _tex(e.config_text), n, *(_tex_cell(tt, c, e.key) for c in cols)])
                       + r" \\")
        out += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(out)


def render_format(fmt: str, table: RunTable, board: Board, correction: str) -> str:
    """The board in one of FORMATS other than md."""
    if fmt == "html":
        from pmrl_bench.report.html import leaderboard_page

        return leaderboard_page(table, board, correction)
    rows = cell_rows(board)
    if fmt == "csv":
        return to_csv(rows)
    if fmt == "json":
        return to_json(board, rows)
    return to_latex(board)
