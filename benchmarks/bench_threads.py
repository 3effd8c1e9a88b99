"""Training time of one run at 1 torch thread versus the default (--threads = the CPUs allotted), side by side,
without and with a competing CPU load.

Usage: python benchmarks/bench_threads.py [--method clip] [--epochs 3] [--repeats 3] [--load N]
Each run is a fresh `python -m pmrl_bench run` subprocess into a temporary results folder; the two thread
settings alternate within each repeat so that both see the same machine. "loaded" adds N busy-looping
processes (default: the allotted CPUs), as parallel local jobs or other users would. Prints the median
train_s (from the records) per setting and the ratio default / 1 thread.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from pmrl_bench.runtime import allotted_cpus


def busy() -> None:
    """Spin forever (a competing CPU-bound process)."""
    while True:
        pass


def train_seconds(method: str, epochs: int, threads: int | None, results_dir: Path) -> float:
    """train_s of one fresh `run` subprocess at the given --threads (None: the default)."""
    cmd = [sys.executable, "-m", "pmrl_bench", "run", "--method", method, "--set", f"epochs={epochs}",
           "--results-dir", str(results_dir), "--force", "-q"]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if threads is not None:
        cmd += ["--threads", str(threads)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    (path,) = results_dir.rglob("*.json")
    return float(json.loads(path.read_text())["timing"]["train_s"])


def measure(method: str, epochs: int, repeats: int) -> dict[str, list[float]]:
    """train_s per repeat at 1 thread and at the default, alternating."""
    out: dict[str, list[float]] = {"1": [], "default": []}
    for _ in range(repeats):
        for key, threads in (("1", 1), ("default", None)):
            with tempfile.TemporaryDirectory() as tmp:
                out[key].append(train_seconds(method, epochs, threads, Path(tmp)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="clip")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--load", type=int, default=None, help="busy processes in the loaded condition")
    args = parser.parse_args()
    n_load = allotted_cpus() if args.load is None else args.load
    print(f"{args.method}, synthetic, {args.epochs} epochs: median train_s of {args.repeats} runs; "
          f"{os.cpu_count()} CPUs, {allotted_cpus()} allotted (default --threads), load average at start "
          f"{os.getloadavg()[0]:.1f}")
    print(f"  {'machine':<22} {'1 thread':>10} {'default':>10} {'default/1':>10}")
    for label, load in (("as found (no extra)", 0), (f"+{n_load} busy processes", n_load)):
        procs = [mp.Process(target=busy, daemon=True) for _ in range(load)]
        for p in procs:
            p.start()
        try:
            times = measure(args.method, args.epochs, args.repeats)
        finally:
            for p in procs:
                p.terminate()
        one, default = statistics.median(times["1"]), statistics.median(times["default"])
        print(f"  {label:<22} {one:9.2f}s {default:9.2f}s {default / one:9.2f}x   "
              f"(all: 1 -> {', '.join(f'{t:.1f}' for t in times['1'])}; "
              f"default -> {', '.join(f'{t:.1f}' for t in times['default'])})")


if __name__ == "__main__":
    main()
