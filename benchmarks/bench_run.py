"""Wall time and peak RSS of whole embedded runs (`python -m pmrl_bench run`, synthetic task, one seed).

Usage: python benchmarks/bench_run.py [--methods pmrl clip imagebind gram] [--task synthetic]
Each run executes in a fresh subprocess into a temporary results directory (nothing is skipped).
Target (performance.md): < 60 s wall and < 2 GB RSS on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def measure(method: str, task: str, results_dir: str) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one `run` subprocess."""
    t0 = time.perf_counter()
    pid = subprocess.Popen(
        [sys.executable, "-m", "pmrl_bench", "run", "--method", method, "--task", task, "--results-dir", results_dir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    ).pid
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"{method} on {task} failed with status {status}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["pmrl", "clip", "imagebind", "gram"])
    parser.add_argument("--task", default="synthetic")
    args = parser.parse_args()
    print(f"whole embedded run, task {args.task}, one seed, {os.cpu_count()} CPUs (target < 60 s, < 2048 MiB)")
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods:
            wall, rss = measure(method, args.task, tmp)
            print(f"  {method:<10} {wall:6.1f} s wall   {rss:7.0f} MiB peak RSS")


if __name__ == "__main__":
    main()
