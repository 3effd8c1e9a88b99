"""Many processes writing records into one results/ at once: nothing lost, truncated, duplicated or left over."""

import json
import multiprocessing as mp
from pathlib import Path

from pmrl_bench.results.record import RunResult, iter_result_files, read_result, write_result

WRITERS = 4
OWN_RECORDS = 150
SHARED_RECORDS = 10  # every writer rewrites these (a retried run, a requeued job finishing twice)
REWRITES = 15


def record(run_id: str, writer: int, version: int) -> RunResult:
    """A valid record whose per-query list is long enough that a torn write would show."""
    return RunResult(run_id=run_id, config_hash="c" * 16, method="clip", task="synthetic", seed=0, status="ok",
                     config={"writer": writer, "version": version}, metrics={"t2va/R@1": float(version)},
                     per_query={"t2va/rank": list(range(1, 2001))}, created_at="2026-01-01T00:00:00+00:00")


def writer(results_dir: str, index: int) -> None:
    """Write this writer's own records and rewrite the shared ones, interleaved."""
    for i in range(OWN_RECORDS):
        write_result(Path(results_dir), record(f"w{index}-{i:04d}", index, i))
        if i % (OWN_RECORDS // REWRITES) == 0:
            for s in range(SHARED_RECORDS):
                write_result(Path(results_dir), record(f"shared-{s:02d}", index, i))


def reader(results_dir: str, stop, reads, bad) -> None:
    """Parse every visible record until told to stop; count the reads and the ones that do not parse."""
    while not stop.is_set():
        for path in iter_result_files(Path(results_dir)):
            try:
                read_result(path)
                reads.value += 1
            except ValueError:
                bad.value += 1


def test_concurrent_atomic_writes_lose_and_corrupt_nothing(tmp_path):
    ctx = mp.get_context("fork")
    stop, reads, bad = ctx.Event(), ctx.Value("i", 0), ctx.Value("i", 0)
    watcher = ctx.Process(target=reader, args=(str(tmp_path), stop, reads, bad))
    watcher.start()
    procs = [ctx.Process(target=writer, args=(str(tmp_path), i)) for i in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    stop.set()
    watcher.join(30)
    assert [p.exitcode for p in procs] == [0] * WRITERS and watcher.exitcode == 0

    folder = tmp_path / "synthetic" / "clip"
    names = sorted(p.name for p in folder.iterdir())
    expected = sorted([f"w{w}-{i:04d}.json" for w in range(WRITERS) for i in range(OWN_RECORDS)]
                      + [f"shared-{s:02d}.json" for s in range(SHARED_RECORDS)])
    assert names == expected  # no loss, no duplicates, no temp files left behind
    for path in folder.iterdir():
        data = json.loads(path.read_text())
        assert len(data["per_query"]["t2va/rank"]) == 2000  # complete, not truncated
        if path.name.startswith("w"):
            assert data["config"]["writer"] == int(path.name[1])
    assert bad.value == 0 and reads.value > 100  # the reader really read while the writers wrote
