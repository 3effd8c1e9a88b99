"""Issue 16: nothing lost, nothing hangs, no traceback. Each test feeds one repro class of the issue."""

from __future__ import annotations

import errno
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pmrl_bench.cli import main
from pmrl_bench.results.record import read_result
from pmrl_bench.runner import RunRequest, checkpoint_path, execute, plan_run

TINY = [("data.sizes", {"train": 128, "val": 64, "test": 64}), ("epochs", 2), ("batch_size", 32), ("head_hidden", 16),
        ("embed_dim", 8)]
TINY_ARGS = [f"--set={k}={v}".replace("'", "") for k, v in TINY]


def _req(results: Path, method: str = "clip", **kw) -> RunRequest:
    return RunRequest(method=method, overrides=TINY + kw.pop("extra", []), results_dir=str(results), **kw)


def _cli(capsys, *args: str) -> tuple[int, str]:
    """Run the CLI in this process; returns (exit code, stderr) and checks it is one line without a traceback."""
    code = main(list(args))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def _one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def ok_run(tmp_path_factory) -> tuple[Path, Path, bytes]:
    """One ok record of a tiny clip run: (results folder, record path, record bytes)."""
    results = tmp_path_factory.mktemp("results")
    record = execute(_req(results))
    assert record.status == "ok"
    path = plan_run(_req(results)).path
    return results, path, path.read_bytes()


def _copy_results(ok_run, tmp_path: Path) -> Path:
    results, path, data = ok_run
    target = tmp_path / "results" / path.relative_to(results)
    target.parent.mkdir(parents=True)
    target.write_bytes(data)
    return target


# --- 1. no path destroys or downgrades a result ------------------------------------------------------------------

def test_leaderboard_out_over_a_record_or_a_folder_is_refused(ok_run, tmp_path, capsys):
    record = _copy_results(ok_run, tmp_path)
    before = record.read_bytes()
    code, err = _cli(capsys, "leaderboard", "--results-dir", str(tmp_path / "results"), "--out", str(record))
    assert code == 2 and "result record" in _one_line(err)
    assert record.read_bytes() == before
    elsewhere = tmp_path / "copy.json"
    elsewhere.write_bytes(before)
    code, err = _cli(capsys, "leaderboard", "--results-dir", str(tmp_path / "results"), "--out", str(elsewhere))
    assert code == 2 and elsewhere.read_bytes() == before
    code, err = _cli(capsys, "leaderboard", "--results-dir", str(tmp_path / "results"), "--out", str(tmp_path))
    assert code == 2 and "is a folder" in _one_line(err)


def test_forced_rerun_stopped_by_a_full_disk_keeps_the_ok_record(ok_run, tmp_path, capsys, monkeypatch):
    record = _copy_results(ok_run, tmp_path)
    before = record.read_bytes()

    def full(path, state):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("pmrl_bench.train.trainer._save_checkpoint", full)
    code, err = _cli(capsys, "run", "--method", "clip", *TINY_ARGS, "--results-dir", str(tmp_path / "results"),
                     "--force")
    line = _one_line(err)
    assert code == 3 and "No space left" in line and f"the ok record {record} is kept" in line
    assert record.read_bytes() == before


def test_a_run_failing_on_its_own_still_replaces_the_record_when_forced(tmp_path):
    first = execute(_req(tmp_path, "pmrl"))
    assert first.status == "ok"
    path = plan_run(_req(tmp_path, "pmrl")).path

    def diverge(self, z):
        return torch.tensor(float("nan"), requires_grad=True)

    from pmrl_bench.registry import get_method

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(get_method("pmrl"), "loss", diverge)
        again = execute(_req(tmp_path, "pmrl", force=True))
    assert again.status == "failed" and again.failed_step == 1
    assert read_result(path).status == "failed"


def test_corrupt_record_at_the_run_path_is_named_and_kept_unless_forced(ok_run, tmp_path, capsys):
    record = _copy_results(ok_run, tmp_path)
    truncated = record.read_bytes()[:200]
    record.write_bytes(truncated)
    args = ("run", "--method", "clip", *TINY_ARGS, "--results-dir", str(tmp_path / "results"))
    code, err = _cli(capsys, *args)
    assert code == 2 and str(record) in _one_line(err) and "--force" in err
    assert record.read_bytes() == truncated
    assert main([*args, "--force"]) == 0
    assert "replacing the corrupt record" in capsys.readouterr().err
    assert read_result(record).status == "ok"


def test_sweep_status_reports_a_corrupt_record_as_corrupt(ok_run, tmp_path, capsys):
    record = _copy_results(ok_run, tmp_path)
    record.write_text("{")
    sweep = tmp_path / "s.yaml"
    sets = {k: v for k, v in TINY}
    sweep.write_text(json.dumps({"methods": ["clip"], "tasks": ["synthetic"], "seeds": [0], "set": {
        k: [v] for k, v in sets.items()}, "logs_dir": str(tmp_path / "logs")}))
    assert main(["status", str(sweep), "--results-dir", str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("corrupt") and "1 corrupt" in out
    assert main(["sweep", str(sweep), "--executor", "debug", "--dry-run", "--results-dir",
                 str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    assert "0 to submit" in out and "1 corrupt record(s) kept" in out


# --- 2. readers never hang or balloon ------------------------------------------------------------------------

def test_dev_zero_symlink_and_fifo_under_results_are_named_not_read(ok_run, tmp_path):
    record = _copy_results(ok_run, tmp_path)
    (record.parent / "zero.json").symlink_to("/dev/zero")
    os.mkfifo(record.parent / "fifo.json")
    t0 = time.perf_counter()
    for verb in (["validate", str(tmp_path / "results")],
                 ["leaderboard", "--results-dir", str(tmp_path / "results"), "--out", str(tmp_path / "L.md")]):
        res = subprocess.run([sys.executable, "-m", "pmrl_bench", *verb], capture_output=True, text=True, timeout=60)
        assert "Traceback" not in res.stderr
        text = res.stdout + res.stderr
        assert "zero.json" in text and "a character device" in text
        assert "fifo.json" in text and "a FIFO" in text
    assert time.perf_counter() - t0 < 60


def _alias_bomb(levels: int = 9) -> str:
    parts = ["x0: &a0 [1,1]"] + [f"x{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "{" + ", ".join(parts) + "}"


def test_yaml_alias_bombs_are_refused_from_every_source(tmp_path, capsys):
    bomb = _alias_bomb()
    assert len(bomb) < 500
    code, err = _cli(capsys, "run", "--method", "clip", f"--set=data.junk={bomb}", "--results-dir", str(tmp_path))
    assert code == 2 and "more than 100000 nodes" in _one_line(err)
    sweep = tmp_path / "bomb.yaml"
    sweep.write_text(f"methods: [clip]\ntasks: [synthetic]\nseeds: [0]\nset: {{data.junk: {bomb}}}\n")
    code, err = _cli(capsys, "sweep", str(sweep), "--dry-run", "--executor", "local")
    assert code == 2 and "more than 100000 nodes" in _one_line(err)
    from pmrl_bench.errors import BenchError
    from pmrl_bench.task import TASKS_DIR, parse_task_file

    task = tmp_path / "bombtask.yaml"
    task.write_text((TASKS_DIR / "synthetic.yaml").read_text() + f"\nadapter_args_junk: {bomb}\n")
    with pytest.raises(BenchError, match="more than 100000 nodes"):
        parse_task_file(task)
    recursive = tmp_path / "rec.yaml"
    recursive.write_text("a: &a [*a]\n")
    with pytest.raises(BenchError):
        parse_task_file(recursive)


def test_huge_sweep_grid_is_refused_before_expansion(tmp_path, capsys):
    sweep = tmp_path / "big.yaml"
    sweep.write_text("methods: [clip]\ntasks: [synthetic]\nseeds: [0]\nset:\n"
                     f"  lr: {[1e-3 + i * 1e-6 for i in range(1000)]}\n"
                     f"  weight_decay: {[i * 1e-4 for i in range(1000)]}\n")
    t0 = time.perf_counter()
    code, err = _cli(capsys, "sweep", str(sweep), "--dry-run", "--executor", "local")
    assert code == 2 and "1000000 runs" in _one_line(err)
    assert time.perf_counter() - t0 < 10


# --- 3. one line, not a traceback --------------------------------------------------------------------------------

@pytest.mark.parametrize(("content", "expected"), [
    ("include: missing.yaml\n", "cannot read task file"),
    ("include: sub\n", "cannot read task file"),
    ("include: 3\n", "include: expected the name"),
    ("include: [a.yaml]\n", "include: expected the name"),
])
def test_task_include_problems_are_one_line(tmp_path, content, expected):
    from pmrl_bench.errors import BenchError
    from pmrl_bench.task import parse_task_file

    (tmp_path / "sub").mkdir()
    task = tmp_path / "t.yaml"
    task.write_text(content)
    with pytest.raises(BenchError, match=expected):
        parse_task_file(task)


def test_non_utf8_task_file_is_one_line(tmp_path):
    from pmrl_bench.errors import BenchError
    from pmrl_bench.task import parse_task_file

    task = tmp_path / "t.yaml"
    task.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(BenchError, match="not UTF-8"):
        parse_task_file(task)


def test_list_tasks_survives_one_malformed_task_file(tmp_path, monkeypatch, capsys):
    from pmrl_bench import task as task_module

    for name in ("synthetic.yaml", "synthetic-noisy-anchor.yaml"):
        (tmp_path / name).write_text((task_module.TASKS_DIR / name).read_text())
    (tmp_path / "broken.yaml").write_text("kind: [\n")
    monkeypatch.setattr(task_module, "TASKS_DIR", tmp_path)
    assert main(["list", "tasks"]) == 0
    out = capsys.readouterr().out
    assert "synthetic-noisy-anchor" in out and "broken" in out and "INVALID" in out


def test_status_with_a_damaged_state_entry_is_not_a_traceback(tmp_path, capsys):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"methods: [clip]\ntasks: [synthetic]\nseeds: [0]\nlogs_dir: {tmp_path / 'logs'}\n")
    state = tmp_path / "logs" / "s" / "state.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"runs": {"x": {"job_id": 3}, "y": "junk"}}))
    code, err = _cli(capsys, "status", str(sweep), "--results-dir", str(tmp_path / "r"))
    assert code == 0 and "ignoring 2 damaged" in err


def test_unexpected_errors_are_one_line_unless_debug(tmp_path, capsys, monkeypatch):
    def boom(args):
        raise RuntimeError("something odd\nsecond line")

    monkeypatch.setattr("pmrl_bench.results.validate.cli_validate", boom)
    code, err = _cli(capsys, "validate", str(tmp_path))
    assert code == 1 and "unexpected RuntimeError: something odd (run with --debug" in _one_line(err)
    with pytest.raises(RuntimeError):
        main(["--debug", "validate", str(tmp_path)])


def test_directory_at_the_checkpoint_path_is_one_line(tmp_path, capsys):
    rid = plan_run(_req(tmp_path)).run_id
    checkpoint_path(tmp_path, rid).mkdir(parents=True)
    code, err = _cli(capsys, "run", "--method", "clip", *TINY_ARGS, "--results-dir", str(tmp_path))
    assert code == 2 and "is not a checkpoint file" in _one_line(err)


def test_cache_entry_with_wrong_json_types_is_corrupt_not_a_traceback(tmp_path):
    from pmrl_bench.data.cache import CacheKey, FeatureCache

    cache = FeatureCache(tmp_path)
    key = CacheKey("d", "train", "audio", "enc", {"x": 1})
    entry = cache.store(key, torch.ones(2, 3), ["a", "b"])
    (entry / "ids.json").write_text("3")
    assert cache.state(key)[0] == "corrupt"
    (entry / "ids.json").write_text('["a", "b"]')
    (entry / "meta.json").write_text("[1]")
    assert cache.state(key)[0] == "corrupt"
    assert cache.load(key) is None


# --- accepted bad input: refused with exit 2 before training -----------------------------------------------------

@pytest.mark.parametrize("option", ["--results-dir", "--task"])
def test_empty_results_dir_or_task_is_refused(option, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--method", "clip", option, ""])
    assert exit_.value.code == 2 and "must not be empty" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "expected"), [
    (["--method", "pmrl", "--set", "tau1=inf"], "tau1: must be a finite number"),
    (["--method", "pmrl", "--set", "tau2=inf"], "tau2: must be a finite number"),
    (["--method", "pmrl", "--set", "gap_eps=inf"], "gap_eps: must be a finite number"),
    (["--method", "pmrl", "--set", "lr=inf"], "lr: must be a finite number"),
    (["--method", "pmrl", "--set", "lr=nan"], "lr: must be a finite number"),
    (["--method", "pmrl", "--set", "data.sizes={train: 0, val: 64, test: 64}"], "sizes.train must be an integer in [1"),
    (["--method", "pmrl", "--set", "data.sizes={train: 128, val: 64, test: 0}"], "sizes.test must be an integer in [1"),
    (["--method", "pmrl", "--set", "embed_dim=1000000000"], "train.embed_dim"),
])
def test_bad_settings_exit_2_before_training(args, expected, tmp_path, capsys):
    code, err = _cli(capsys, "run", *args, "--results-dir", str(tmp_path))
    assert code == 2 and expected in _one_line(err)
    assert not list(tmp_path.rglob("*.json"))


@pytest.mark.parametrize(("extra", "expected"), [
    ("seeds: [-1]", "seeds.0"),
    ("seeds: [100000000000000000000]", "seeds.0"),
    ("seeds: [0]\nname: ../../x", "name"),
    ("seeds: [0]\nmethod: [clip]", "unknown sweep key 'method'; did you mean 'methods'"),
])
def test_sweeps_apply_the_run_rules(tmp_path, capsys, extra, expected):
    sweep = tmp_path / "s.yaml"
    methods = "" if "method:" in extra else "methods: [clip]\n"
    sweep.write_text(f"{methods}tasks: [synthetic]\n{extra}\n")
    code, err = _cli(capsys, "sweep", str(sweep), "--dry-run", "--executor", "local")
    assert code == 2 and expected in _one_line(err)


def test_sweep_float_written_like_1e_4_is_read_as_run_reads_it(tmp_path, capsys):
    from pmrl_bench.cluster.sweep import load_sweep, plan_sweep

    sweep = tmp_path / "s.yaml"
    sweep.write_text("methods: [clip]\ntasks: [synthetic]\nseeds: [0]\nset: {lr: [1e-4]}\n")
    planned = plan_sweep(load_sweep(str(sweep), str(tmp_path)))
    assert planned[0].config["train"]["lr"] == 1e-4
    same = plan_run(RunRequest(method="clip", overrides=[("lr", 1e-4)], results_dir=str(tmp_path)))
    assert planned[0].run_id == same.run_id


def test_data_extract_on_a_missing_cuda_device_is_refused(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, err = _cli(capsys, "data", "extract", "--task", "synthetic", "--device", "cuda")
    assert code == 2 and "no CUDA device" in _one_line(err)


# --- 4. checkpoints and failed steps --------------------------------------------------------------------------

def _bad_checkpoints(good: dict) -> dict[str, object]:
    wrong_shape = {**good, "heads": {k: torch.zeros(3) for k in good["heads"]}}
    return {"wrong structure": {"hello": 1}, "wrong id": {**good, "run_id": "0" * 16},
            "impossible epoch": {**good, "epoch": 999}, "wrong shapes": wrong_shape, "not a list": [1, 2]}


def test_foreign_checkpoints_are_reported_and_ignored(ok_run, tmp_path, capsys, monkeypatch):
    results, path, data = ok_run
    reference = read_result(path)
    saved: dict = {}
    from pmrl_bench.train import trainer

    real = trainer._save_checkpoint
    monkeypatch.setattr(trainer, "_save_checkpoint", lambda p, state: saved.setdefault("s", state) and real(p, state))
    execute(_req(tmp_path / "probe"))
    monkeypatch.setattr(trainer, "_save_checkpoint", real)
    for name, state in _bad_checkpoints(saved["s"]).items():
        run_dir = tmp_path / name.replace(" ", "_")
        ckpt = checkpoint_path(run_dir, reference.run_id)
        ckpt.parent.mkdir(parents=True)
        torch.save(state, ckpt)
        capsys.readouterr()
        record = execute(_req(run_dir))
        err = capsys.readouterr().err
        assert "ignoring checkpoint" in err and "training starts over" in err, name
        assert record.status == "ok" and record.protocol["resumed_from_epoch"] == 0, name
        assert record.metrics == reference.metrics, name


def test_linear_algebra_failure_records_the_step(tmp_path, capsys):
    code = main(["run", "--method", "pmrl", *TINY_ARGS, "--set", "lr=1e6", "--results-dir", str(tmp_path)])
    assert code == 1
    record = read_result(next(tmp_path.rglob("*.json")))
    assert record.status == "failed" and isinstance(record.failed_step, int) and record.failed_step >= 1


def test_non_finite_settings_are_stored_as_strings(ok_run, tmp_path):
    from pmrl_bench.results.record import write_result

    record = read_result(ok_run[1])
    odd = record.model_copy(update={"config": {**record.config, "x": float("inf"), "y": [float("nan"), -math.inf]}})
    data = json.loads(write_result(tmp_path, odd).read_text())
    assert data["config"]["x"] == "inf" and data["config"]["y"] == ["nan", "-inf"]


# --- 5. feature cache notices content changes ---------------------------------------------------------------------

def test_media_replaced_by_same_size_content_changes_the_key(tmp_path):
    from pmrl_bench.data.encoding import _media_fingerprint

    media = tmp_path / "a.wav"
    media.write_bytes(b"A" * 100)
    first = _media_fingerprint([media], tmp_path / "cache")
    assert _media_fingerprint([media], tmp_path / "cache") == first
    os.utime(media, ns=(1, 1))
    assert _media_fingerprint([media], tmp_path / "cache") == first  # touched, same content: same key
    media.write_bytes(b"B" * 100)
    os.utime(media, ns=(2, 2))
    assert _media_fingerprint([media], tmp_path / "cache") != first


# --- 6. temp files of killed writers -----------------------------------------------------------------------------

def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftover_temp_files_are_listed_cleaned_and_removed_by_the_next_writer(ok_run, tmp_path, capsys):
    import socket

    from pmrl_bench.files import atomic_write_text

    record = _copy_results(ok_run, tmp_path)
    leftover = record.parent / f".{record.name}.{socket.gethostname()}.{_dead_pid()}.deadbeef.tmp"
    leftover.write_bytes(b"x" * 1000)
    live = record.parent / f".{record.name}.{socket.gethostname()}.{os.getpid()}.cafecafe.tmp"
    live.write_bytes(b"y")
    assert main(["validate", str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    assert f"{leftover}: leftover temp file" in out and str(live) not in out
    assert leftover.exists()
    assert main(["validate", str(tmp_path / "results"), "--clean"]) == 0
    assert not leftover.exists() and live.exists()
    leftover.write_bytes(b"x")
    atomic_write_text(record.parent / "other.txt", "z")
    assert not leftover.exists() and live.exists()


def test_symlinked_folder_under_results_is_reported(ok_run, tmp_path, capsys):
    record = _copy_results(ok_run, tmp_path)
    (tmp_path / "results" / "elsewhere").symlink_to(record.parent.parent)
    assert main(["validate", str(tmp_path / "results")]) == 1
    assert "elsewhere: symlinked folder, not followed" in capsys.readouterr().out


# --- 7. kill -9 loop and a full disk -------------------------------------------------------------------------------

def test_kill_9_loop_never_leaves_a_partial_record(tmp_path):
    argv = [sys.executable, "-m", "pmrl_bench", "run", "--method", "clip", *TINY_ARGS, "--set", "epochs=6",
            "--results-dir", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    for delay in (2.5, 3.0, 3.5, 4.0):
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.kill()
        proc.wait()
        for path in tmp_path.rglob("*.json"):
            assert read_result(path).status == "ok"  # a record is complete or absent
    final = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    assert time.perf_counter() - t0 < 60
    fresh = subprocess.run([*argv[:-1], str(tmp_path / "fresh")], env=env, capture_output=True, text=True,
                           timeout=120)
    assert fresh.returncode == 0
    (resumed,) = tmp_path.glob("synthetic/clip/*.json")
    (clean,) = (tmp_path / "fresh").glob("synthetic/clip/*.json")
    assert read_result(resumed).metrics == read_result(clean).metrics
    assert not [p for p in tmp_path.rglob(".*.tmp")]


def test_full_disk_on_a_small_tmpfs_keeps_the_ok_record(ok_run, tmp_path):
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the disk-full test needs root to mount a tmpfs under CI")
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if res.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount a tmpfs: {res.stderr.decode().strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    try:
        results, path, data = ok_run
        record = mount / path.relative_to(results)
        record.parent.mkdir(parents=True)
        record.write_bytes(data)
        filler = mount / "filler"
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        filler.write_bytes(b"\0" * max(free - 4096, 0))
        argv = [sys.executable, "-m", "pmrl_bench", "run", "--method", "clip", *TINY_ARGS, "--results-dir",
                str(mount), "--force"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert out.returncode == 3, out.stderr
        assert "Traceback" not in out.stderr and "kept" in out.stderr
        assert record.read_bytes() == data
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_pickled_encoder_weights_are_refused_in_one_line(tmp_path):
    from pmrl_bench.data.encoders.packaged import load_weights
    from pmrl_bench.errors import BenchError

    class Payload:
        def __reduce__(self):
            return (print, ("payload ran",))

    path = tmp_path / "w.pt"
    torch.save({"x": Payload()}, path)
    with pytest.raises(BenchError, match="refused, not a plain tensor file"):
        load_weights(path)


def test_leaderboard_into_a_read_only_or_full_folder_is_one_line(ok_run, tmp_path, capsys, monkeypatch):
    _copy_results(ok_run, tmp_path)

    def read_only(path, text):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr("pmrl_bench.report.leaderboard.atomic_write_text", read_only)
    code, err = _cli(capsys, "leaderboard", "--results-dir", str(tmp_path / "results"))
    assert code == 3 and "Read-only file system" in _one_line(err)

