"""The per-scope statistics cache: bit-identical to a cold run, recomputes only what changed, survives corruption."""

from records_factory import simulated_ranks, write

from pmrl_bench.cli import main


def board(root, capsys, *extra):
    assert main(["leaderboard", "--results-dir", str(root), *extra]) == 0
    err = capsys.readouterr().err
    return (root / "LEADERBOARD.md").read_bytes(), (root / "LEADERBOARD_tasks" / "synthetic.md").read_bytes(), err


def entries(root):
    return set((root / ".cache" / "stats").glob("*.pkl"))


def test_cache_is_bit_identical_and_recomputes_only_what_changed(tmp_path, capsys):
    for task in ("synthetic", "tuxpaint"):
        for method, q in (("pmrl", 0.3), ("clip", 0.5), ("gram", 0.6)):
            for seed in range(3):
                write(tmp_path, task, method, seed, {"t2va/rank": simulated_ranks(120, q, seed)})
    cold = board(tmp_path, capsys, "--no-cache")
    assert not (tmp_path / ".cache").exists()
    first = board(tmp_path, capsys)
    stored = entries(tmp_path)
    assert len(stored) == 2 and first[:2] == cold[:2]  # one scope per task
    mtimes = {p: p.stat().st_mtime_ns for p in stored}
    warm = board(tmp_path, capsys)
    assert warm[:2] == cold[:2] and {p: p.stat().st_mtime_ns for p in entries(tmp_path)} == mtimes

    write(tmp_path, "tuxpaint", "gram", 3, {"t2va/rank": simulated_ranks(120, 0.6, 3)})  # one new run
    after = board(tmp_path, capsys)
    new = entries(tmp_path) - stored
    assert len(new) == 1  # only the changed scope was recomputed
    assert after[:2] == board(tmp_path, capsys, "--no-cache")[:2]

    victim = sorted(new)[0]
    victim.write_bytes(b"not a pickle")
    again = board(tmp_path, capsys)
    assert again[:2] == after[:2]
    assert f"warning: stats cache entry {victim} unreadable (UnpicklingError); recomputed" in again[2]
    assert victim.read_bytes() != b"not a pickle"
    assert main(["validate", str(tmp_path)]) == 0  # the cache is never read as a result record
