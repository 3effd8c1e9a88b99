"""pmrl_bench: a benchmark suite and leaderboard harness for multimodal alignment objectives."""

__version__ = "0.1.0"
