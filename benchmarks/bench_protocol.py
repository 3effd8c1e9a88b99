"""Cost of selection on validation: a synthetic run with train.select=best_val vs select=last, side by side.

Both runs train the same 20 epochs on the same batches; best_val also evaluates the validation primary metric
after every epoch (400 queries x 400 candidates) and keeps the best epoch's state. Runs alternate (last,
best_val, last, ...) in this one process so that load on the machine hits both alike; the figure is the
ratio of median wall times of `execute` (training + curve + test evaluation; features are loaded once).

    python benchmarks/bench_protocol.py [--methods pmrl clip] [--repeats 3] 2>/dev/null   # stderr: epoch lines
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from pmrl_bench.plan import RunRequest
from pmrl_bench.runner import execute


def timed(method: str, select: str, seed: int) -> tuple[float, float]:
    """Wall seconds of one run, and the seconds it spent in validation."""
    with tempfile.TemporaryDirectory() as tmp:
        req = RunRequest(method=method, seed=seed, overrides=[("select", select)], results_dir=tmp)
        t0 = time.perf_counter()
        record = execute(req, label=f"[{method} {select}]")
        return time.perf_counter() - t0, record.timing.get("val_s", 0.0)


def main() -> None:
    """Print one row per method as it is measured: median wall of each rule, the ratio, the validation share."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["pmrl", "clip", "imagebind", "gram"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| method | select=last (s) | select=best_val (s) | ratio | validation share of best_val |")
    print("| --- | --- | --- | --- | --- |", flush=True)
    for method in args.methods:
        timed(method, "last", 0)  # warm-up: features, imports
        last, best, val = [], [], []
        for r in range(args.repeats):
            last.append(timed(method, "last", r)[0])
            wall, v = timed(method, "best_val", r)
            best.append(wall)
            val.append(v / wall)
        a, b = statistics.median(last), statistics.median(best)
        print(f"| {method} | {a:.2f} | {b:.2f} | {b / a:.3f} | {100 * statistics.median(val):.1f}% |", flush=True)


if __name__ == "__main__":
    main()
