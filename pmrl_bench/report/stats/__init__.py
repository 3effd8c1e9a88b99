"""Statistics protocol v2 (docs/statistics.md v1 plus all-pairs adjusted marks and permutation Friedman p): pure, vectorised functions."""

from pmrl_bench.report.stats.bootstrap import (
    BootstrapDraws,
    BootstrapInput,
    bootstrap_p,
    percentile_interval,
    two_level_bootstrap,
)
from pmrl_bench.report.stats.multiple import adjust, holm
from pmrl_bench.report.stats.outcomes import MetricDef, metric_def, per_query_values, run_metric, unit_means
from pmrl_bench.report.stats.paired import (
    SeedQueryParts,
    TTest,
    crossed_t_test,
    crossed_t_tests,
    mean_interval,
    query_only_interval,
    seed_query_parts,
)
from pmrl_bench.report.stats.ranking import (
    critical_difference,
    friedman_iman_davenport,
    nemenyi_p,
    probability_of_improvement,
    task_ranks,
)
from pmrl_bench.report.stats.signflip import sign_flip_p
from pmrl_bench.report.stats.streams import N_RESAMPLES, STATS_SEED

PROTOCOL_VERSION = 2
MIN_SEEDS = 3
ALPHA = 0.05

__all__ = [
    "ALPHA", "MIN_SEEDS", "N_RESAMPLES", "PROTOCOL_VERSION", "STATS_SEED",
    "BootstrapDraws", "BootstrapInput", "MetricDef", "SeedQueryParts", "TTest",
    "adjust", "bootstrap_p", "critical_difference", "crossed_t_test", "crossed_t_tests",
    "friedman_iman_davenport", "holm", "mean_interval", "metric_def", "nemenyi_p",
    "per_query_values", "percentile_interval", "probability_of_improvement", "query_only_interval",
    "run_metric", "seed_query_parts", "sign_flip_p", "task_ranks", "two_level_bootstrap", "unit_means",
]
