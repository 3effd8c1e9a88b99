"""pmrl_bench: a benchmark suite and leaderboard harness for multimodal alignment objectives.

The Python API (docs/plugins.md): `evaluate`, `load_results`, `leaderboard`, the plug-in decorators
`register_method` / `register_task` / `register_adapter`, `use_plugins` (the CLI's --include /
--include-path) and `Method`; the helpers for writing an objective are in `pmrl_bench.toolkit`.
Everything is imported on first use, so `import pmrl_bench` stays light (no torch).
"""

import importlib

__version__ = "0.1.0"

from pmrl_bench.api import evaluate, leaderboard, load_results

_LAZY = {
    "register_method": "pmrl_bench.registry",
    "register_task": "pmrl_bench.registry",
    "register_adapter": "pmrl_bench.registry",
    "Method": "pmrl_bench.train.method",
}

__all__ = ["Method", "evaluate", "leaderboard", "load_results", "register_adapter", "register_method",
           "register_task", "use_plugins"]


def use_plugins(include: list[str] | None = None, include_path: list[str] | None = None) -> None:
    """Import plug-in modules and add plug-in folders, as the CLI's --include and --include-path do."""
    from pmrl_bench.plugins import use

    use(include, include_path)


def __getattr__(name: str) -> object:
    """The lazily imported parts of the API."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pmrl_bench' has no attribute {name!r}")
