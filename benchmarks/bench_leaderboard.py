"""Leaderboard and HTML report over many records: time per record, scaling in records and entries, memory.

Writes synthetic result records (one retrieval direction, 1,000 queries, 5 seeds per configuration,
ranks with a shared query difficulty) into a temporary folder, then times, in this one process and side
by side, `leaderboard` and `report` over them. The (records, entries per task) grid gives the scaling
table; the peak traced memory of the leaderboard statistics at E entries on one task is measured with
tracemalloc. Usage:

    python benchmarks/bench_leaderboard.py [--grid 60:4 600:20 3000:100] [--memory-entries 100]
        [--warm 3000:200 --repeats 3 [--baseline /path/to/another/checkout]]

`--warm` times R regenerations of a filled cache, each after one new record, as `python -m pmrl_bench
leaderboard` subprocesses (imports included); with `--baseline` the same command from that checkout
alternates with this one on the same folder (its cache filled first), so both codes' figures come from
one run.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from pmrl_bench.cli import main
from pmrl_bench.report.leaderboard import build_leaderboard
from pmrl_bench.report.stats.outcomes import metric_def, run_metric
from pmrl_bench.results.record import RunResult, write_result
from pmrl_bench.results.table import load_runs

TASKS = ("synthetic", "synthetic-noisy-anchor", "tuxpaint")
N_QUERIES, N_SEEDS, N_CAND = 1000, 5, 1000
METRICS = ("R@1", "R@5", "R@10", "MdR", "MnR")


def write_records(root: Path, n_records: int, entries_per_task: int, tasks: tuple[str, ...] = TASKS) -> int:
    """n_records records spread over the tasks, entries_per_task (method, config) per task, 5 seeds each."""
    digest = hashlib.sha256(b"bench eval set").hexdigest()
    difficulty = np.random.default_rng(0).uniform(0, 1, N_QUERIES)
    written = 0
    for e in range(entries_per_task):
        for task in tasks:
            for seed in range(N_SEEDS):
                if written == n_records:
                    return written
                rng = np.random.default_rng([e, seed, len(task)])
                p = np.clip(0.2 + 0.5 * (e % 7) / 7 - 0.3 * difficulty + rng.normal(0, 0.02), 0.02, 0.98)
                ranks = np.minimum(rng.geometric(p), N_CAND)
                metrics = {f"t2va/{m}": float(run_metric(metric_def(m), ranks)) for m in METRICS}
                config_hash = hashlib.sha256(f"cfg{e}".encode()).hexdigest()[:16]
                rec = RunResult(run_id=hashlib.sha256(f"{e}-{seed}".encode()).hexdigest()[:16], config_hash=config_hash,
                                method=f"m{e % 4}", task=task, seed=seed, status="ok",
                                config={"method_params": {"variant": e}}, metrics=metrics,
                                per_query={"t2va/rank": ranks.tolist()}, eval_set={"t2va": digest},
                                protocol={"t2va": {"n_queries": N_QUERIES, "n_candidates": N_CAND}},
                                created_at="2026-01-01T00:00:00")
                write_result(root, rec)
                written += 1
    return written


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one CLI call (its output swallowed); CPU is what a busy shared machine keeps honest."""
    start, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(argv) == 0
    return time.perf_counter() - start, time.process_time() - cpu


def add_record(root: Path, tmp: Path, seed: int) -> None:
    """One new record (a new seed of the first configuration on the first task) written into `root`."""
    one = tmp / f"one{seed}"
    write_records(one, 1, 1)
    new = next(one.rglob("*.json"))
    name = hashlib.sha256(f"new{seed}".encode()).hexdigest()[:16]
    target = (root / new.relative_to(one)).with_name(name + ".json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(new.read_bytes().replace(b'"seed": 0', f'"seed": {seed}'.encode()).replace(
        new.stem.encode(), name.encode()))


def cli_run(code: Path, argv: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of `python -m pmrl_bench ARGV` run from the checkout `code` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pmrl_bench", *argv], check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(code)})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - start, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def warm_rows(n: int, entries: int, repeats: int, baseline: Path | None) -> None:
    """Min / median wall and CPU of `repeats` warm regenerations (one new record each), codes alternating."""
    codes = {"this checkout": Path(__file__).resolve().parents[1]}
    if baseline is not None:
        codes["baseline " + str(baseline)] = baseline.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "results"
        n = write_records(root, n, entries)
        outs = {label: ["leaderboard", "--results-dir", str(root), "--out", str(Path(tmp) / f"LB{i}.md")]
                for i, label in enumerate(codes)}
        for label, code in codes.items():
            cli_run(code, outs[label])  # fills the cache
        times: dict[str, list[tuple[float, float]]] = {label: [] for label in codes}
        for r in range(repeats):
            for label, code in codes.items():
                add_record(root, Path(tmp), 100 + len(codes) * r + list(codes).index(label))
                times[label].append(cli_run(code, outs[label]))
        print(f"\nwarm leaderboard, {n:,} records, {entries} entries per task, one new record before each run "
              f"({repeats} runs per code, alternating; load average {os.getloadavg()[0]:.1f}):\n")
        print("| code | wall s (min / median) | CPU s (min / median) |")
        print("| --- | ---: | ---: |")
        for label, rows in times.items():
            wall, cpu = zip(*rows, strict=True)
            print(f"| {label} | {min(wall):.1f} / {statistics.median(wall):.1f} | "
                  f"{min(cpu):.1f} / {statistics.median(cpu):.1f} |")


def peak_memory(root: Path) -> float:
    """Peak traced MiB of loading the records and computing every statistic of the leaderboard."""
    tracemalloc.start()
    with contextlib.redirect_stderr(io.StringIO()):
        build_leaderboard(load_runs(root), {}, "holm")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main_bench() -> None:
    """Print the scaling table and the memory figure."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--grid", nargs="+", default=["60:4", "600:40", "3000:200"], help="RECORDS:ENTRIES_PER_TASK")
    parser.add_argument("--memory-entries", type=int, default=100)
    parser.add_argument("--warm", default=None, help="RECORDS:ENTRIES_PER_TASK for the warm repeats (then only those)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout to time alongside")
    args = parser.parse_args()
    if args.warm:
        warm_rows(*(int(v) for v in args.warm.split(":")), args.repeats, args.baseline)
        return
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print("| records | entries per task | leaderboard cold: wall s (CPU s), CPU ms/record | warm, one new record: "
          "wall s (CPU s) | report cold: wall s (CPU s), CPU ms/record |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for item in args.grid:
        n, entries = (int(v) for v in item.split(":"))
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "results"
            n = write_records(root, n, entries)
            out = ["--results-dir", str(root), "--out"]
            cold = timed(["leaderboard", *out, str(Path(tmp) / "LB.md"), "--no-cache"])
            rp = timed(["report", *out, str(Path(tmp) / "site"), "--no-cache"])
            timed(["leaderboard", *out, str(Path(tmp) / "LB.md")])  # fills the cache
            write_records(Path(tmp) / "one", 1, 1)  # one new record on the first task
            new = next((Path(tmp) / "one").rglob("*.json"))
            target = root / new.relative_to(Path(tmp) / "one")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(new.read_bytes().replace(b'"seed": 0', b'"seed": 99').replace(
                new.stem.encode(), b"f" * 16))
            target.rename(target.with_name("f" * 16 + ".json"))
            warm = timed(["leaderboard", *out, str(Path(tmp) / "LB.md")])
            print(f"| {n:,} | {min(entries, -(-n // (len(TASKS) * N_SEEDS)))} | {cold[0]:.1f} ({cold[1]:.1f}), "
                  f"{1000 * cold[1] / n:.1f} | {warm[0]:.1f} ({warm[1]:.1f}) | {rp[0]:.1f} ({rp[1]:.1f}), "
                  f"{1000 * rp[1] / n:.1f} |", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "results"
        e = args.memory_entries
        write_records(root, e * N_SEEDS, e, TASKS[:1])
        print(f"peak traced memory, {e} entries x {N_SEEDS} seeds on one task: {peak_memory(root):.0f} MiB")


if __name__ == "__main__":
    main_bench()
