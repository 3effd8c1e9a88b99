"""Wall time and peak RSS of `sweep --dry-run` on large grids, and of the refusal of a grid past the limit.

Usage: python benchmarks/bench_sweep_plan.py [--runs 1000 10000]
Each dry run executes in a fresh subprocess (imports included) on a grid of `set: {lr: [...]}` x 10 seeds,
synthetic task, clip, into an empty temporary results folder (every run is planned, none is done).
Target (issue 16): a 10,000-run grid plans in < 10 s and < 500 MB; a 1000 x 1000 grid is refused at once.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def sweep_file(folder: Path, n_lr: int, n_wd: int = 1, seeds: int = 10) -> Path:
    """A sweep of clip on synthetic with n_lr x n_wd settings and `seeds` seeds."""
    lrs = [round(1e-3 + i * 1e-7, 10) for i in range(n_lr)]
    wds = [round(i * 1e-5, 10) for i in range(n_wd)]
    path = folder / f"grid_{n_lr}x{n_wd}x{seeds}.yaml"
    path.write_text(f"methods: [clip]\ntasks: [synthetic]\nseeds: {list(range(seeds))}\n"
                    f"set:\n  lr: {lrs}\n  weight_decay: {wds}\nlogs_dir: {folder / 'logs'}\n")
    return path


def measure(path: Path, results: Path) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in MiB, exit status) of one `sweep --dry-run` subprocess."""
    t0 = time.perf_counter()
    pid = subprocess.Popen(
        [sys.executable, "-m", "pmrl_bench", "sweep", str(path), "--executor", "local", "--dry-run",
         "--results-dir", str(results)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    ).pid
    _, status, usage = os.wait4(pid, 0)
    cpu = usage.ru_utime + usage.ru_stime
    return time.perf_counter() - t0, cpu, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    print(f"sweep --dry-run, clip x synthetic x 10 seeds, {os.cpu_count()} CPUs (target 10,000 runs < 10 s, < 500 MiB)")
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print("| grid | runs | exit | wall | CPU | peak RSS |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = [(f"{n // 10} lr x 10 seeds", n, sweep_file(folder, n // 10)) for n in args.runs]
        rows.append(("1000 lr x 1000 wd x 10 seeds", 10_000_000, sweep_file(folder, 1000, 1000)))
        base = None
        for label, n, path in rows:
            wall, cpu, rss, code = measure(path, folder / "results")
            base = base or cpu
            state = "planned" if code == 0 else "refused"
            print(f"| {label} | {n:,} | {code} ({state}) | {wall:.2f} s | {cpu:.2f} s ({cpu / base:.1f}x the first) "
                  f"| {rss:.0f} MiB |")


if __name__ == "__main__":
    main()
