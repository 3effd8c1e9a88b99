"""Command line: `python -m pmrl_bench <verb> ...`. Verbs import their heavy modules lazily."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from pmrl_bench import __version__
from pmrl_bench.errors import EXIT_BROKEN_PIPE, EXIT_ENVIRONMENT, BenchError, EnvironmentFailure
from pmrl_bench.runtime import COMPILE_ENV, apply_threads, env_flag, setup_logging

LOG = logging.getLogger(__name__)

EPILOG = """examples:
  python -m pmrl_bench list methods
  python -m pmrl_bench run --method pmrl                      # embedded synthetic task, seed 0
  python -m pmrl_bench run --method gram --task synthetic --seeds 0 1 2 --set epochs=5
  python -m pmrl_bench tune --method pmrl --seeds 0 1 2 3 4          # pick on validation, then 5 final seeds
  python -m pmrl_bench leaderboard                            # regenerate results/LEADERBOARD.md
  python -m pmrl_bench compare --task synthetic --methods pmrl gram
  python -m pmrl_bench export --out runs.csv                  # tidy CSV: one row per run x metric
  python -m pmrl_bench report --out site/                     # static HTML report
  python -m pmrl_bench sweep slurm/sweeps/synthetic.yaml --executor local --dry-run
"""

# verb -> "module:function"; each function takes the parsed namespace and returns an exit code
HANDLERS = {
    "list": "pmrl_bench.cli:cmd_list",
    "run": "pmrl_bench.runner:cli_run",
    "tune": "pmrl_bench.tune:cli_tune",
    "sweep": "pmrl_bench.cluster.sweep:cli_sweep",
    "status": "pmrl_bench.cluster.sweep:cli_status",
    "leaderboard": "pmrl_bench.report.leaderboard:cli_leaderboard",
    "compare": "pmrl_bench.report.compare:cli_compare",
    "export": "pmrl_bench.report.export:cli_export",
    "report": "pmrl_bench.report.site:cli_report",
    "validate": "pmrl_bench.results.validate:cli_validate",
    "data": "pmrl_bench.data.cli:cli_data",
}

# import name of an optional dependency -> the extra that installs it (pyproject.toml)
OPTIONAL = {
    "transformers": "encoders", "huggingface_hub": "encoders", "PIL": "encoders",
    "av": "media", "soundfile": "media", "soxr": "media", "datasets": "media", "pyarrow": "media",
    "submitit": "slurm", "matplotlib": "plots",
}


def _seed(text: str) -> int:
    """A seed: an integer in [0, 2^63)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"{value} is outside [0, 2^63)")
    return value


def _nonempty(text: str) -> str:
    """A name or path that is not empty (an empty path would mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _positive(text: str) -> int:
    """A positive integer (threads, item counts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def add_runtime_options(p: argparse.ArgumentParser, threads: bool, scores: bool) -> None:
    """-v / -q on every verb; --threads on the verbs that compute, --compile on those that score."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=1, default=0,
                   help="also log debug lines")
    g.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=-1,
                   help="log warnings and errors only")
    if threads:
        p.add_argument("--threads", type=_positive, default=None,
                       help="torch threads (default: the CPUs allotted to this process: its affinity mask, "
                            "capped by SLURM_CPUS_PER_TASK)")
    if scores:
        p.add_argument("--compile", action="store_true",
                       help=f"score with compiled kernels where a method's score has one (pmrl's sigma_1; "
                            f"torch.compile, also {COMPILE_ENV}=1; a sweep passes it to its jobs): about 5x faster "
                            "on large galleries after a first call that compiles for 5-15 s")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every verb."""
    parser = argparse.ArgumentParser(
        prog="python -m pmrl_bench",
        description="Benchmark multimodal alignment objectives and build significance-tested leaderboards.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an unexpected error (also PMRL_BENCH_DEBUG=1)")
    parser.add_argument("--version", action="version", version=f"pmrl_bench {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    plug = argparse.ArgumentParser(add_help=False)
    plug.add_argument("--include", action="append", default=[], metavar="MODULE",
                      help="import a module or .py file that registers plug-ins (repeatable; docs/plugins.md)")
    plug.add_argument("--include-path", action="append", default=[], metavar="DIR",
                      help="a plug-in folder with methods/, tasks/, tasks/adapters/ (repeatable; also PMRL_BENCH_PATH)")

    p = sub.add_parser("list", parents=[plug], help="list registered methods and tasks")
    p.add_argument("what", nargs="?", choices=["methods", "tasks", "adapters"], default=None)

    p = sub.add_parser("run", parents=[plug], help="train and evaluate one method on one task for some seeds")
    p.add_argument("--method", required=True, help="registered method name (see `list methods`)")
    p.add_argument("--task", type=_nonempty, default=None, help="task name (default: the embedded synthetic task)")
    p.add_argument("--seeds", type=_seed, nargs="+", default=[0])
    p.add_argument("--results-dir", type=_nonempty, default="results")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a method, train or data setting (repeatable), e.g. tau1=0.1 or train.epochs=5")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--force", action="store_true", help="re-run even if a result with this run_id exists")
    p.add_argument("--limit", type=_positive, default=None, metavar="N",
                   help="quick check: the first N train items and the first N test queries against the whole gallery "
                        "(record marked limited, not on leaderboards)")

    p = sub.add_parser("tune", parents=[plug], help="tune a method on validation (its declared search space), then run final seeds")
    p.add_argument("--method", required=True, help="registered method name (see `list methods`)")
    p.add_argument("--task", type=_nonempty, default=None, help="task name (default: the embedded synthetic task)")
    p.add_argument("--seeds", type=_seed, nargs="+", default=[0], help="final seeds, run with the chosen configuration")
    p.add_argument("--selection-seeds", type=_seed, nargs="+", default=[0], help="seeds of the selection runs")
    p.add_argument("--results-dir", type=_nonempty, default="results")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting kept fixed for every configuration (not a tuned parameter)")

    p = sub.add_parser("sweep", parents=[plug], help="run a grid of runs locally or as SLURM job arrays (submit and exit)")
    p.add_argument("sweep_file")
    p.add_argument("--executor", choices=["slurm", "local", "debug"], default=None)
    p.add_argument("--profile", default=None, help="slurm/profiles/<cluster>.yaml (overrides the sweep's)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, submit nothing")
    p.add_argument("--results-dir", type=_nonempty, default=None)

    p = sub.add_parser("status", parents=[plug], help="state of every run of a sweep (result files first, then the scheduler)")
    p.add_argument("sweep_file")
    p.add_argument("--results-dir", type=_nonempty, default=None)

    p = sub.add_parser("leaderboard", parents=[plug], help="regenerate the leaderboard Markdown from result files")
    p.add_argument("--results-dir", type=_nonempty, default="results")
    p.add_argument("--out", type=_nonempty, default=None, help="default: <results-dir>/LEADERBOARD.md")
    p.add_argument("--correction", choices=["holm", "bh"], default="holm")
    p.add_argument("--poi", action="store_true", help="add the probability-of-improvement column")
    p.add_argument("--config", action="append", default=[], metavar="METHOD=HASH|LABEL",
                   help="use only this configuration of a method (hash prefix, label, tuned or default)")
    p.add_argument("--format", default="md", help="md (default), csv, json, latex or html")
    p.add_argument("--suite", default=None, help="suite to rank: tasks/suites/<NAME>.yaml or a suite file (default: default)")
    p.add_argument("--no-cache", action="store_true", help="recompute every statistic (no <results-dir>/.cache/stats)")

    p = sub.add_parser("compare", parents=[plug], help="paired significance test of two methods on one task")
    p.add_argument("--task", type=_nonempty, required=True)
    p.add_argument("--methods", nargs=2, required=True, metavar=("A", "B"))
    p.add_argument("--metric", default=None, help="default: the task's primary metric")
    p.add_argument("--results-dir", type=_nonempty, default="results")
    p.add_argument("--config", action="append", default=[], metavar="METHOD=HASH|LABEL")

    p = sub.add_parser("export", help="every run's metrics as a tidy CSV (one row per run x metric)")
    p.add_argument("--results-dir", type=_nonempty, default="results")
    p.add_argument("--out", default=None, help="CSV file (default: standard output)")

    p = sub.add_parser("report", help="write the static HTML report (no server, no network)")
    p.add_argument("--results-dir", type=_nonempty, default="results")
    p.add_argument("--out", required=True, help="folder of the site (index.html, one page per task)")
    p.add_argument("--correction", choices=["holm", "bh"], default="holm")
    p.add_argument("--suite", default=None)
    p.add_argument("--no-cache", action="store_true", help="recompute every statistic (no <results-dir>/.cache/stats)")

    p = sub.add_parser("validate", help="check result files against the record schema")
    p.add_argument("path", type=_nonempty, nargs="?", default="results")
    p.add_argument("--clean", action="store_true", help="remove leftover temp files of killed writers")

    p = sub.add_parser("data", parents=[plug], help="prepare data, fill or check the feature cache")
    p.add_argument("action", choices=["extract", "check", "prepare"])
    p.add_argument("target", nargs="?", default=None, help="dataset to prepare (for `prepare`)")
    p.add_argument("--task", type=_nonempty, default=None)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--device", default="cpu")
    for verb, verb_parser in sub.choices.items():
        add_runtime_options(verb_parser, threads=verb in ("run", "data"), scores=verb in ("run", "tune", "sweep"))
    return parser


def cmd_list(args: argparse.Namespace) -> int:
    """Print registered methods, tasks and adapters with one-line descriptions."""
    from pmrl_bench.registry import adapter_names, method_names
    from pmrl_bench.task import load_task, task_names

    # every name first: a plug-in error (a duplicate, an include that does not import) is then the only output
    methods = method_names() if args.what in (None, "methods") else None
    tasks = task_names() if args.what in (None, "tasks") else None
    adapters = adapter_names() if args.what == "adapters" else None
    if methods is not None:
        print("methods:")
        for name, doc in methods.items():
            print(f"  {name:<14} {doc}")
    if tasks is not None:
        print("tasks:")
        for name in tasks:
            try:
                spec = load_task(name)
            except BenchError as exc:  # one broken task file must not hide the others
                print(f"  {name:<24} {'INVALID':<15} {exc}")
                continue
            print(f"  {name:<24} {spec.kind:<15} {spec.description.splitlines()[0] if spec.description else ''}")
    if adapters is not None:
        print("adapters:")
        for name, doc in adapters.items():
            print(f"  {name:<14} {doc}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: user errors exit 2, the environment 3, anything unexpected 1; one line each, no traceback."""
    args = build_parser().parse_args(argv)
    setup_logging(args.verbosity)
    debug = args.debug or env_flag("PMRL_BENCH_DEBUG")
    module_name, func_name = HANDLERS[args.verb].split(":")
    try:
        if getattr(args, "include", None) or getattr(args, "include_path", None):
            from pmrl_bench.plugins import use

            use(args.include, args.include_path)
        if hasattr(args, "threads"):
            apply_threads(args.threads)
        if getattr(args, "compile", False):
            os.environ[COMPILE_ENV] = "1"
        handler = getattr(importlib.import_module(module_name), func_name)
        return int(handler(args) or 0)
    except BenchError as exc:
        LOG.error("error: %s", exc)
        return 2
    except EnvironmentFailure as exc:
        LOG.error("error: %s", exc)
        return EXIT_ENVIRONMENT
    except ModuleNotFoundError as exc:
        extra = OPTIONAL.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        LOG.error("error: this needs %s: pip install 'pmrl_bench[%s]'", exc.name, extra)
        return 2
    except KeyboardInterrupt:
        LOG.error("interrupted")
        return 130
    except BrokenPipeError:  # the reader of stdout went away (`list | head`): stop quietly, as on SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as exc:  # a folder or file the user pointed at cannot be read or written
        if debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        LOG.error("error: %s%s; check the path, its permissions and free space", where, exc.strerror or exc)
        return EXIT_ENVIRONMENT
    except Exception as exc:
        if debug:
            raise
        text = (str(exc).strip().splitlines() or [""])[0]
        LOG.error("error: unexpected %s: %s (run with --debug for the traceback)", type(exc).__name__, text)
        return 1
