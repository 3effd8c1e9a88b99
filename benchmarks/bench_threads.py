"""Training time of one run at 1 torch thread versus the default (--threads = the CPUs allotted), side by side,
without and with a competing CPU load.

Usage: python benchmarks/bench_threads.py [--method clip] [--epochs 3] [--repeats 3] [--load N]
                                         [--wait-below L --wait-s S]
Each run is a fresh `python -m pmrl_bench run` subprocess into a temporary results folder; the two thread
settings alternate within each repeat so that both see the same machine, and each run's line gives the
1-minute load average before and after it (on a shared machine the figures mean nothing without it).
"loaded" adds N busy-looping processes (default: the allotted CPUs), as parallel local jobs or other users
would; `--load 0` measures the machine as found only. `--wait-below L` first waits (up to `--wait-s`) for
the load average to fall below L, to catch an idle moment. Prints the median train_s (from the records) per
setting and the ratio default / 1 thread.
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
import time
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


def load1() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def measure(method: str, epochs: int, repeats: int) -> dict[str, list[float]]:
    """train_s per repeat at 1 thread and at the default, alternating; one line per run with the load around it."""
    out: dict[str, list[float]] = {"1": [], "default": []}
    for repeat in range(repeats):
        for key, threads in (("1", 1), ("default", None)):
            before = load1()
            with tempfile.TemporaryDirectory() as tmp:
                out[key].append(train_seconds(method, epochs, threads, Path(tmp)))
            print(f"    repeat {repeat} --threads {key:<7} {out[key][-1]:7.2f}s   load {before:.1f} -> {load1():.1f}",
                  flush=True)
    return out


def wait_below(level: float, limit_s: float) -> None:
    """Sleep until the 1-minute load average is below `level`, at most `limit_s` seconds."""
    start = time.monotonic()
    while load1() >= level and time.monotonic() - start < limit_s:
        time.sleep(10)
    print(f"  waited {time.monotonic() - start:.0f} s for load < {level}: load now {load1():.2f}", flush=True)


def main() -> None:
    """Print the table of benchmarks/RESULTS.md, "Threads"."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="clip")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--load", type=int, default=None, help="busy processes in the loaded condition (0: none)")
    parser.add_argument("--wait-below", type=float, default=None, help="first wait for the load average to drop below")
    parser.add_argument("--wait-s", type=float, default=1800.0)
    args = parser.parse_args()
    n_load = allotted_cpus() if args.load is None else args.load
    if args.wait_below is not None:
        wait_below(args.wait_below, args.wait_s)
    print(f"{args.method}, synthetic, {args.epochs} epochs: median train_s of {args.repeats} runs; "
          f"{os.cpu_count()} CPUs, {allotted_cpus()} allotted (default --threads), load average at start "
          f"{load1():.1f}", flush=True)
    conditions = [("as found (no extra)", 0)] + ([(f"+{n_load} busy processes", n_load)] if n_load else [])
    for label, load in conditions:
        procs = [mp.Process(target=busy, daemon=True) for _ in range(load)]
        for p in procs:
            p.start()
        try:
            times = measure(args.method, args.epochs, args.repeats)
        finally:
            for p in procs:
                p.terminate()
        one, default = statistics.median(times["1"]), statistics.median(times["default"])
        print(f"  {label:<22} 1 thread {one:.2f}s, default {default:.2f}s, default/1 {default / one:.2f}x", flush=True)


if __name__ == "__main__":
    main()
