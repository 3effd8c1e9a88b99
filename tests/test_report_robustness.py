"""Leaderboard robustness section (issue 13 part 5): curve values, area, paired test and the plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pmrl_bench.report.robustness import area_under, entity_curve, robustness_section
from pmrl_bench.results.table import Entity, Run


def _run(method: str, seed: int, ranks: dict[str, list[int]]) -> Run:
    outcomes = {p: ("rank", np.asarray(r, dtype=np.int64)) for p, r in ranks.items()}
    return Run(Path(f"{method}-{seed}.json"), "synthetic", method, "h" * 16, seed, "ok", None, {}, outcomes, {},
               {}, {})


def _entity(method: str, per_seed: list[dict[str, list[int]]]) -> Entity:
    return Entity(method, "h" * 16, method, tuple(_run(method, s, r) for s, r in enumerate(per_seed)))


def test_area_is_the_mean_height_of_the_trapezoids():
    assert area_under(np.array([10.0, 20.0, 0.0]), np.array([0.0, 1.0, 3.0])) == pytest.approx((15 + 10 * 2) / 3)


def test_curve_values_by_hand():
    good = _entity("clip", [
        {"t2va": [1, 1, 1, 2], "t2va.noise1": [1, 1, 2, 2], "t2va.noise2": [1, 3, 2, 2], "t2va.missing": [1, 1, 1, 1]},
        {"t2va": [1, 1, 2, 2], "t2va.noise1": [1, 2, 2, 2], "t2va.noise2": [2, 3, 2, 2], "t2va.missing": [1, 2, 1, 1]},
    ])
    curve = entity_curve(good, "t2va", "R@1")
    assert curve.levels.tolist() == [0.0, 1.0, 2.0]
    # R@1 per level: seed 0 (75, 50, 25), seed 1 (50, 25, 0): means 62.5, 37.5, 12.5
    assert curve.value.tolist() == pytest.approx([62.5, 37.5, 12.5])
    assert curve.missing[0] == pytest.approx((100 + 75) / 2)
    assert entity_curve(_entity("x", [{"t2va": [1, 2]}]), "t2va", "R@1") is None


def test_section_ranks_by_area_and_writes_the_plot(tmp_path):
    rng = np.random.default_rng(0)
    strong = _entity("clip", [{"t2va": list(rng.integers(1, 3, 60)), "t2va.noise1": list(rng.integers(1, 4, 60))}
                              for _ in range(3)])
    weak = _entity("gram", [{"t2va": list(rng.integers(1, 6, 60)), "t2va.noise1": list(rng.integers(2, 9, 60))}
                            for _ in range(3)])
    plot = tmp_path / "LEADERBOARD_robustness_synthetic.png"
    lines = robustness_section([weak, strong], "t2va/R@1", plot)
    table = "\n".join(lines)
    clip_row = next(line for line in table.splitlines() if line.startswith("| clip "))
    gram_row = next(line for line in table.splitlines() if line.startswith("| gram "))
    assert clip_row.rstrip(" |").endswith("best") and "e-" in gram_row.split("|")[-2]  # clearly worse
    assert "`t2va/R@1` vs noise level" in table and plot.stat().st_size > 1000
    assert robustness_section([_entity("clip", [{"t2va": [1, 2, 3]}])], "t2va/R@1", tmp_path / "none.png") == []
    assert not (tmp_path / "none.png").exists()


def test_report_page_draws_the_curves_with_their_intervals():
    from pmrl_bench.report.site import robustness_html

    clip = _entity("clip", [{"t2va": [1, 1, 1, 2], "t2va.noise1": [1, 1, 2, 2]},
                            {"t2va": [1, 1, 2, 2], "t2va.noise1": [1, 2, 2, 2]}])
    html = "\n".join(robustness_html([clip, _entity("gram", [{"t2va": [1, 2]}])], "t2va/R@1"))
    # R@1 per level over the two seeds: clean (75 + 50) / 2, noise 1 (50 + 25) / 2
    assert "<th>0</th><th>1</th>" in html and ">62.5 ± " in html and ">37.5 ± " in html
    assert "<polyline" in html and html.count("<tr><td>") == 1  # gram has no noise levels: not drawn
    assert robustness_html([_entity("gram", [{"t2va": [1, 2]}])], "t2va/R@1") == []
