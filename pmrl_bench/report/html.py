"""HTML pieces of the report: a self-contained page (inline CSS and sorting script), sortable task tables."""

from __future__ import annotations

import html
from collections.abc import Sequence

from pmrl_bench.report.leaderboard import (
    HOW_TO_READ,
    Board,
    TaskTable,
    _cell_text,
    _header,
    _row_order,
    render_ranking,
    render_task_footnote,
)
from pmrl_bench.report.stats import MIN_SEEDS
from pmrl_bench.results.table import RunTable

STYLE = """body{font-family:sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:4px 8px;text-align:right}
th{background:#eee;cursor:pointer;user-select:none}td:first-child,td:nth-child(2){text-align:left}
th.asc::after{content:" \\25B2"}th.desc::after{content:" \\25BC"}.note{font-size:90%;color:#444}
pre{background:#f6f6f6;padding:8px;white-space:pre-wrap}"""

SORT_SCRIPT = """function sortTable(th){var table=th.closest('table'),body=table.tBodies[0],
idx=Array.prototype.indexOf.call(th.parentNode.children,th),asc=!th.classList.contains('asc');
Array.prototype.forEach.call(th.parentNode.children,function(h){h.classList.remove('asc','desc')});
th.classList.add(asc?'asc':'desc');var rows=Array.prototype.slice.call(body.rows);
rows.sort(function(a,b){var x=a.cells[idx].getAttribute('data-sort'),y=b.cells[idx].getAttribute('data-sort'),
nx=parseFloat(x),ny=parseFloat(y),c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return asc?c:-c});
rows.forEach(function(r){body.appendChild(r)})}
document.addEventListener('DOMContentLoaded',function(){document.querySelectorAll('table.sortable th')
.forEach(function(th){th.addEventListener('click',function(){sortTable(th)})})});"""


def esc(text: object) -> str:
    """HTML-escaped text."""
    return html.escape(str(text), quote=True)


def page(title: str, body: Sequence[str]) -> str:
    """A complete page: no external resources of any kind."""
    return "\n".join(["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{esc(title)}</title>",
                      f"<style>{STYLE}</style>", f"<script>{SORT_SCRIPT}</script>", "</head><body>", *body,
                      "</body></html>"]) + "\n"


def paragraphs(text: str) -> str:
    """Plain text lines as escaped paragraphs."""
    return "\n".join(f'<p class="note">{esc(line)}</p>' for line in text.splitlines() if line.strip())


def task_table_html(tt: TaskTable, columns: Sequence[str]) -> str:
    """A sortable table of one task: label, config, n, then the columns (sort keys are the unrounded values)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in ["method", "config", "n", *(_header(c) for c in columns)])
    rows = []
    for e in _row_order(tt):
        n_ok = sum(r.ok for r in e.runs)
        cells = [f'<td data-sort="{esc(e.label)}">{esc(e.label)}</td>',
                 f'<td data-sort="{esc(e.config_text)}">{esc(e.config_text)}</td>', f'<td data-sort="{n_ok}">'
                 f"{n_ok}/{len(e.runs)}</td>"]
        for c in columns:
            stats = tt.cells[c].get(e.key)
            text = _cell_text(stats, tt.marks[c].get(e.key, ""))
            shown = f"<b>{esc(text.strip('*'))}</b>" if text.startswith("**") else esc(text)
            cells.append(f'<td data-sort="{"" if stats is None else repr(stats.value)}">{shown}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="sortable" id="table-{esc(tt.layout.task)}"><thead><tr>{head}</tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


def ranking_html(board: Board) -> str:
    """The cross-task ranking text (its Markdown table kept as preformatted text)."""
    return f"<pre>{esc(render_ranking(board.suite_tables, False, None))}</pre>"


def leaderboard_page(table: RunTable, board: Board, correction: str, task_links: bool = False,
                     cd_image: str | None = None) -> str:
    """The compact leaderboard as one HTML page (task names link to task pages when task_links)."""
    n_ok = sum(r.ok for r in table.runs)
    body = ["<h1>pmrl_bench leaderboard</h1>",
            f'<p class="note">{table.n_files} result files: {n_ok} successful runs, {len(table.runs) - n_ok} failed, '
            f"{len(table.problems)} invalid.</p>",
            f"<p>{esc(HOW_TO_READ.format(min_seeds=MIN_SEEDS).replace('**', ''))}</p>"]
    for tt in board.tables:
        name = esc(tt.layout.task)
        title = f'<a href="tasks/{name}.html">{name}</a>' if task_links else name
        outside = "" if tt in board.suite_tables else f" (not in suite {esc(board.suite.name)})"
        body += [f"<h2>{title}{outside}</h2>", f'<p class="note">Primary metric: {esc(tt.layout.primary)}</p>']
        if tt.cells:
            body += [task_table_html(tt, tt.compact), paragraphs(render_task_footnote(tt, correction))]
    body += [f"<h2>Across tasks (suite {esc(board.suite.name)})</h2>", ranking_html(board)]
    if cd_image:
        body.append(f'<img src="{esc(cd_image)}" alt="Critical difference diagram">')
    return page("pmrl_bench leaderboard", body)
