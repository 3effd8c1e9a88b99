"""`leaderboard` on result folders with known outcomes: marks, footnotes, ranking, determinism, bad files."""

from pathlib import Path

import numpy as np
import pytest
from records_factory import digest, leaderboard_scenario, simulated_ranks, write

from pmrl_bench.cli import main


def section(markdown: str, title: str) -> str:
    """The text of one '## title' section."""
    return markdown.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def table_rows(text: str) -> dict[str, list[str]]:
    """label -> cells of the first Markdown table in the text."""
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    return {cells[0]: cells[1:] for cells in ([c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:])}


def header_cells(text: str) -> list[str]:
    """Column names of the first Markdown table in the text."""
    header = next(ln for ln in text.splitlines() if ln.startswith("|"))
    return [c.strip() for c in header.strip("|").split("|")]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    paths = leaderboard_scenario(root)
    corrupt_bytes = paths["corrupt"].read_bytes()
    return root, paths, corrupt_bytes


@pytest.fixture(scope="module")
def board(scenario):
    root, paths, _ = scenario
    import io
    from contextlib import redirect_stderr, redirect_stdout

    err, out = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out):
        rc = main(["leaderboard", "--results-dir", str(root)])
    assert rc == 0
    return (root / "LEADERBOARD.md").read_text(encoding="utf-8"), err.getvalue(), out.getvalue()


def test_marks_in_a_task_table(board):
    rows = table_rows(section(board[0], "synthetic"))
    assert list(rows) == ["pmrl", "twin", "clip", "imagebind", "gram (default) [bbbbbbbb]", "gram"]
    assert rows["gram"][0] == rows["pmrl"][0] == "default"  # config column: kind (no label: the defaults)
    r1 = 2  # column index of t2va R@1 (after config, n)
    assert rows["pmrl"][r1].startswith("**") and rows["twin"][r1].startswith("**")  # exact tie: both bold
    assert rows["pmrl"][r1] == rows["twin"][r1]
    assert rows["clip"][r1].endswith("†")  # not significantly worse
    assert rows["imagebind"][r1].endswith("‡")  # two seeds: not tested
    for label in ("gram", "gram (default) [bbbbbbbb]"):  # truly worse: no mark
        assert not rows[label][r1].endswith(("†", "‡", "**"))
    assert " ± " in rows["gram"][r1]


def test_n_column_and_cells_formats(board):
    rows = table_rows(section(board[0], "synthetic"))
    assert rows["imagebind"][1] == "2/3"  # one failed run
    assert rows["clip"][1] == "6/6"  # the run on another eval set is successful but left out of the table
    assert header_cells(section(board[0], "synthetic")) == ["method", "config", "n", "t2va R@1", "t2va MRR"]


def test_task_page_has_the_full_grid(scenario, board):
    page = (scenario[0] / "LEADERBOARD_tasks" / "synthetic.md").read_text(encoding="utf-8")
    assert "[synthetic page](LEADERBOARD_tasks/synthetic.md)" in section(board[0], "synthetic")
    assert header_cells(page) == ["method", "config", "n", "t2va R@1", "t2va R@5", "t2va R@10", "t2va MdR",
                                  "t2va MnR", "t2va MRR"]
    rows = table_rows(page)
    mdr = rows["gram"][5]
    assert mdr.count("[") == 1 and mdr.endswith("] ‡")  # MdR is never tested: explicit mark, not "worse"
    assert rows["pmrl"][5].startswith("**")
    assert "MdR is never tested" in page


def test_task_footnote(board):
    text = section(board[0], "synthetic")
    assert "Holm-adjusted over the 10 pairwise comparisons of that column" in text
    assert "population of queries and training seeds" in text
    assert "is detected with 80% probability" in text
    assert "Queries: 300 (t2va), eval set " + digest("synthetic:t2va/rank")[:8] in text
    assert "imagebind seed 2 (failed: loss became NaN at step 12)" in text
    assert "clip seed 7 (t2va: eval set " + digest("another test split")[:8] + ")" in text
    assert "Invalid files (unreadable or failing validation; in no row, see `validate`): pmrl 1." in text
    assert "Stats protocol v2; resampling: numpy PCG64, seed 12345, 10,000 resamples." in text
    assert "Query identity not verified" not in text


def test_values_match_the_records(scenario, board):
    root = scenario[0]
    rows = table_rows(section(board[0], "synthetic"))
    ranks = [simulated_ranks(300, 0.4, s, 0) for s in range(5)]
    value = np.mean([100 * np.mean(r <= 1) for r in ranks])
    assert rows["gram"][2].startswith(f"{value:.1f} ± ")
    assert (root / "synthetic" / "gram").is_dir()


def test_cross_task_ranking_and_diagram(scenario, board):
    root = scenario[0]
    text = section(board[0], "Across tasks")
    rows = table_rows(text)
    assert list(rows) == ["pmrl", "twin", "clip", "gram"]
    assert rows["pmrl"][0] == rows["twin"][0] == "1.50"
    assert "(exact permutation p over every within-task reordering)" in text
    assert "Iman-Davenport" not in text  # not accurate at N = 2
    assert "Nemenyi CD (alpha = 0.05, k = 4, N = 2)" in text
    assert "Entries: each method's tuned configuration (selected on validation), else its default" in text
    assert "imagebind (missing: synthetic, synthetic-noisy-anchor)" in text
    assert "![Critical difference diagram](LEADERBOARD_cd.png)" in text
    assert (root / "LEADERBOARD_cd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_files_are_skipped_with_a_warning_and_kept(scenario, board):
    _, paths, corrupt_bytes = scenario
    md, err, out = board
    assert f"warning: skipping {paths['corrupt']}: Invalid JSON" in err
    assert f"{paths['other_eval_set']}: left out of synthetic/t2va" in err
    assert "skipped 1 invalid file(s) and 1 run(s) on another eval set" in out
    assert "1 invalid (skipped" in md
    assert paths["corrupt"].read_bytes() == corrupt_bytes


def test_regeneration_is_byte_identical(scenario, board, tmp_path):
    root = scenario[0]
    png = (root / "LEADERBOARD_cd.png").read_bytes()
    out = tmp_path / "again.md"
    assert main(["leaderboard", "--results-dir", str(root), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == board[0].replace("LEADERBOARD_cd.png", "again_cd.png").replace(
        "LEADERBOARD_tasks/", "again_tasks/")
    assert (tmp_path / "again_tasks" / "synthetic.md").read_bytes() == (
        root / "LEADERBOARD_tasks" / "synthetic.md").read_bytes()
    assert (tmp_path / "again_cd.png").read_bytes() == png
    assert main(["leaderboard", "--results-dir", str(root)]) == 0
    assert (root / "LEADERBOARD.md").read_text(encoding="utf-8") == board[0]
    assert (root / "LEADERBOARD_cd.png").read_bytes() == png


def test_config_picks_one_and_bh_and_poi(scenario, tmp_path):
    out = tmp_path / "lb.md"
    assert main(["leaderboard", "--results-dir", str(scenario[0]), "--out", str(out), "--config", "gram=bbbb",
                 "--correction", "bh", "--poi"]) == 0
    md = out.read_text(encoding="utf-8")
    rows = table_rows(section(md, "synthetic"))
    assert "gram" in rows and not any("[" in label for label in rows)
    assert "Benjamini-Hochberg-adjusted over the 6 pairwise comparisons" in md and "false discovery rate" in md
    ranking = table_rows(section(md, "Across tasks"))
    assert ranking["pmrl"][2] == "–"
    lo_hi = ranking["gram"][2]
    assert lo_hi.startswith("0.00 [")


def test_config_unknown_hash_is_refused(scenario, capsys):
    assert main(["leaderboard", "--results-dir", str(scenario[0]), "--config", "gram=ffff"]) == 2
    assert "unknown configuration of gram 'ffff'" in capsys.readouterr().err


def test_missing_or_empty_results_dir(tmp_path, capsys):
    assert main(["leaderboard", "--results-dir", str(tmp_path / "nope")]) == 2
    assert "no result files under" in capsys.readouterr().err
    assert main(["leaderboard", "--results-dir", str(tmp_path)]) == 2
    assert "no result files under" in capsys.readouterr().err
    assert not (tmp_path / "LEADERBOARD.md").exists()


def test_task_without_task_file_and_other_outcomes(tmp_path):
    """Columns from the records, no primary metric; classification outcomes; query groups; one method: no ranking."""
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), [2, 3] * 20)  # unequal sizes: group-weighted
    for method, p in (("pmrl", 0.7), ("clip", 0.5)):
        for seed in range(3):
            write(tmp_path, "mystery", method, seed, {"t2v/rank": rng.geometric(p, 100),
                                                     "cls/correct": rng.random(50) < p},
                  groups={"t2v": groups})
    write(tmp_path, "mystery", "gram", 0, {"t2v/rank": rng.geometric(0.5, 100), "cls/correct": rng.random(50) < 0.5},
          groups={"t2v": groups}, eval_set={})
    (tmp_path / "LEADERBOARD_cd.png").write_bytes(b"stale diagram of an earlier ranking")
    assert main(["leaderboard", "--results-dir", str(tmp_path)]) == 0
    md = (tmp_path / "LEADERBOARD.md").read_text(encoding="utf-8")
    text = section(md, "mystery (not in suite `default`)")
    assert header_cells(text) == ["method", "config", "n", "cls acc", "t2v R@1", "t2v MRR"]
    page = (tmp_path / "LEADERBOARD_tasks" / "mystery.md").read_text(encoding="utf-8")
    assert header_cells(page) == ["method", "config", "n", "cls acc", "t2v R@1", "t2v R@5", "t2v R@10", "t2v MdR",
                                  "t2v MnR", "t2v MRR"]
    assert "Primary metric:" not in text  # never guessed (it used to be the first column)
    assert "tasks/mystery.yaml not found or invalid and the records carry no task_meta" in text
    assert "no primary metric" in text
    assert "query groups: as recorded (40 groups, group-weighted)" in text
    assert "Query identity not verified: gram." in text
    rows = table_rows(text)
    assert rows["gram"][2].endswith("‡") and " ± " not in rows["gram"][2]  # one seed: value only
    across = section(md, "Across tasks")
    assert "Suite tasks without results here (ranked over the others): synthetic, synthetic-noisy-anchor, tuxpaint, synthetic-qa, tuxpaint-mc, tuxpaint-qa, tuxpaint-category" in across
    assert "No task has results on its primary metric: no ranking." in across
    assert not (tmp_path / "LEADERBOARD_cd.png").exists()


def test_untouched_results(scenario):
    root = scenario[0]
    files = sorted(p for p in Path(root).rglob("*.json"))
    assert len(files) == 53


def test_cd_diagram_labels_fit_and_bytes_are_stable(tmp_path):
    from pmrl_bench.report.cdplot import cd_figure, draw_cd_diagram

    labels = ["pmrl", "clip [0123abcd]", "imagebind [89abcdef]", "gram", "clip-anchored", "m6", "m7", "m8"]
    ranks = np.array([1.4, 2.2, 3.1, 3.9, 5.2, 5.5, 6.8, 7.9])
    fig = cd_figure(labels, ranks, 2.1)
    renderer = fig.canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    texts = fig.axes[0].texts
    assert {t.get_text() for t in texts} >= {"CD = 2.10", "imagebind [89abcdef] (3.10)", "m8 (7.90)"}
    for t in texts:
        box = t.get_window_extent(renderer)
        assert 0 <= box.x0 and box.x1 <= width and 0 <= box.y0 and box.y1 <= height, t.get_text()
    assert fig.get_size_inches()[1] == pytest.approx(1.2 + 0.25 * 8)
    a, b = draw_cd_diagram(labels, ranks, 2.1, tmp_path / "a.png"), draw_cd_diagram(labels, ranks, 2.1, tmp_path / "b.png")
    assert a.read_bytes() == b.read_bytes()
    assert b"Software" not in a.read_bytes() and not list(tmp_path.glob(".*.tmp"))


META = {"version": 3, "primary_metric": "t2v/MnR", "metrics": ["R@1", "MnR", "acc"], "prefixes": ["t2v", "cls"],
        "directions": {"R@1": "higher", "MnR": "lower", "acc": "higher"}}


def test_self_describing_records_rank_without_a_task_file(tmp_path, capsys):
    """task_meta gives columns, primary metric and direction; the missing task file is one warning line."""
    rng = np.random.default_rng(1)
    for task in ("mystery", "riddle"):
        for method, p in (("pmrl", 0.8), ("clip", 0.5), ("gram", 0.3)):
            for seed in range(3):
                # acc is best for gram and worst for pmrl: a guessed primary (first column) would invert the ranking
                write(tmp_path, task, method, seed, {"t2v/rank": np.minimum(rng.geometric(p, 200), 100),
                                                     "cls/correct": rng.random(200) < 1 - p}, task_meta=META)
    suite = tmp_path / "riddles.yaml"
    suite.write_text("tasks:\n  - {task: mystery, primary: t2v/MnR}\n  - {task: riddle, primary: t2v/MnR}\n")
    assert main(["leaderboard", "--results-dir", str(tmp_path), "--suite", str(suite)]) == 0
    err = capsys.readouterr().err
    assert err.count("tasks/mystery.yaml not found") == 1 and err.count("tasks/riddle.yaml not found") == 1
    md = (tmp_path / "LEADERBOARD.md").read_text(encoding="utf-8")
    text = section(md, "mystery")
    assert "Primary metric: `t2v/MnR` (lower is better)." in text
    assert header_cells(text) == ["method", "config", "n", "t2v MnR", "t2v R@1", "t2v MRR", "cls acc"]
    assert list(table_rows(text)) == ["pmrl", "clip", "gram"]  # lowest mean rank first
    assert [row[0] for row in table_rows(section(md, "Across tasks")).values()] == ["1.00", "2.00", "3.00"]
    assert list(table_rows(section(md, "Across tasks"))) == ["pmrl", "clip", "gram"]


def test_changed_task_file_is_reported_and_the_records_layout_kept(tmp_path, capsys):
    meta = {**META, "version": 7, "prefixes": ["t2va"], "metrics": ["R@1", "MnR"], "primary_metric": "t2va/R@1",
            "directions": {"R@1": "higher", "MnR": "lower"}}
    for method, p in (("pmrl", 0.8), ("clip", 0.5)):
        for seed in range(2):
            write(tmp_path, "synthetic", method, seed, {"t2va/rank": simulated_ranks(50, p, seed)}, task_meta=meta)
    assert main(["leaderboard", "--results-dir", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert err.count("tasks/synthetic.yaml is version 1 but the records are version 7") == 1
    text = section((tmp_path / "LEADERBOARD.md").read_text(encoding="utf-8"), "synthetic")
    assert header_cells(text) == ["method", "config", "n", "t2va R@1", "t2va MRR"]
    page = (tmp_path / "LEADERBOARD_tasks" / "synthetic.md").read_text(encoding="utf-8")
    assert header_cells(page) == ["method", "config", "n", "t2va R@1", "t2va MnR", "t2va MRR"]  # not the file's five
    assert "is version 1 but the records are version 7" in text


def test_limited_records_are_kept_out_of_the_leaderboard(tmp_path):
    from records_factory import make_record

    from pmrl_bench.results.record import write_result
    from pmrl_bench.results.table import load_runs

    for seed in range(2):
        write(tmp_path, "synthetic", "pmrl", seed, {"t2va/rank": simulated_ranks(50, 0.8, seed)})
        rec = make_record("synthetic", "clip", seed, {"t2va/rank": simulated_ranks(50, 0.5, seed)})
        write_result(tmp_path, rec.model_copy(update={"limited": True}))
    table = load_runs(tmp_path)
    assert {r.method for r in table.runs} == {"pmrl"} and table.n_limited == 2 and not table.problems
