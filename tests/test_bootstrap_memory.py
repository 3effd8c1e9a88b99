"""The bootstrap's memory is bounded by its product, not by the widest median window (issue 12.1)."""

import numpy as np

from pmrl_bench.report.stats.bootstrap import BootstrapInput, _median_columns, two_level_bootstrap


def inputs(n_entities: int, n_queries: int = 200):
    rng = np.random.default_rng(0)
    out = []
    for e in range(n_entities):
        ranks = np.minimum(rng.geometric(0.05 + 0.1 * e, size=(3, n_queries)), 500)
        out.append(BootstrapInput(f"m@{e}", (100.0 / ranks)[..., None], ranks))
    return out


def test_chunking_by_product_gives_identical_replicates():
    ents = inputs(4)
    default = two_level_bootstrap("t/p", ents, 300)
    tiny = two_level_bootstrap("t/p", ents, 300, chunk_rows=7)
    for key, draws in default.items():
        np.testing.assert_array_equal(draws.median, tiny[key].median)  # integer counts: exact at any chunking
        np.testing.assert_allclose(draws.mean, tiny[key].mean, rtol=1e-13)  # float sums: BLAS blocking round-off


def test_median_columns_are_not_padded_to_the_widest_window():
    series = np.concatenate([e.ranks for e in inputs(4)])
    med = _median_columns(series, None, series.shape[1])
    assert med.columns.shape == (series.shape[1], int(med.width.sum()))
    assert med.width.min() < med.width.max()  # windows differ: padding would have cost M x max(width)
    for m in range(len(series)):  # each series' columns are its own indicators [r <= v]
        cols = med.columns[:, med.offset[m] : med.offset[m] + med.width[m]]
        np.testing.assert_array_equal(cols, series[m][:, None] <= med.values[med.offset[m]: med.offset[m] + med.width[m]])
