"""Wall time of `python -m pmrl_bench status` on a sweep of 1,000 runs, beside the cost of importing torch.

Usage: python benchmarks/bench_status.py [--runs 1000] [--done 1.0] [--repeats 3]
Builds a sweep (4 methods x runs/4 seeds on the synthetic task) in a temporary folder, writes a record
like the committed synthetic ones (1,000 per-query ranks) for the first `done` fraction of its runs,
then times the whole `status` command in fresh processes (interpreter start and imports included),
side by side with `python -c "import torch"`, which `status` used to pay. Target (issue 12): < 1 s.
CPU time (user + system) is printed beside wall time: on a loaded machine it is the figure that holds.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

METHODS = ["pmrl", "clip", "imagebind", "gram"]


def build(root: Path, runs: int, done: float) -> Path:
    """A sweep file of `runs` runs under root, with ok records for the first `done` fraction of them."""
    from pmrl_bench.cluster.sweep import load_sweep, plan_sweep
    from pmrl_bench.results.record import RunResult, write_result

    sweep = root / "bench.yaml"
    sweep.write_text(yaml.safe_dump({
        "methods": METHODS, "tasks": ["synthetic"], "seeds": list(range(runs // len(METHODS))),
        "executor": "local", "results_dir": str(root / "results"), "logs_dir": str(root / "logs")}))
    planned = plan_sweep(load_sweep(str(sweep)))
    ranks = [(7 * i) % 1000 + 1 for i in range(1000)]
    for p in planned[: round(done * len(planned))]:
        write_result(root / "results", RunResult(
            run_id=p.run_id, config_hash=p.config_hash, method=p.request.method, task=p.spec.name,
            seed=p.request.seed, status="ok", config=p.config, metrics={"t2va/R@1": 10.0},
            per_query={"t2va/rank": ranks}, eval_set={"t2va": "0" * 64}, created_at="2026-01-01T00:00:00"))
    return sweep


def measure(cmd: list[str], repeats: int) -> tuple[list[float], list[float]]:
    """(wall seconds, CPU seconds: user + system) of `repeats` fresh runs of a command (output discarded)."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def fmt(t: list[float]) -> str:
    """min / median / max."""
    return f"{min(t):.2f} / {statistics.median(t):.2f} / {max(t):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--done", type=float, default=1.0, help="fraction of the runs with a record")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sweep = build(Path(tmp), args.runs, args.done)
        rows = {
            "status": measure([sys.executable, "-m", "pmrl_bench", "status", str(sweep)], args.repeats),
            "python -c 'import torch'": measure([sys.executable, "-c", "import torch"], args.repeats),
        }
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"status of a {args.runs}-run sweep, {args.done:.0%} with records; min / median / max of {args.repeats} "
          f"fresh processes; {os.cpu_count()} CPUs, load average {load} (target: status < 1 s)")
    for name, (walls, cpus) in rows.items():
        print(f"  {name:<26} wall s {fmt(walls)}   CPU s {fmt(cpus)}")


if __name__ == "__main__":
    main()
