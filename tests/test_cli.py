"""CLI behaviour: listing, one-line errors with suggestions and exit code 2, no traceback."""

import subprocess
import sys

import pytest

from pmrl_bench.cli import main
from tests.helpers import SMALL_ARGS


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pmrl_bench", *args], capture_output=True, text=True, timeout=120)


def test_list_shows_methods_and_tasks_without_importing_torch():
    code = "import sys; from pmrl_bench.cli import main; main(['list']); print('TORCH', 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    for name in ("pmrl", "clip", "imagebind", "gram", "synthetic", "synthetic-noisy-anchor"):
        assert name in out
    assert "TORCH False" in out


def test_list_into_a_closed_pipe_stops_quietly(tmp_path):
    """`list | true`: the reader is gone before anything is written; no error line, the shell's SIGPIPE status."""
    err = tmp_path / "err.txt"
    script = f"{sys.executable} -m pmrl_bench list 2>{err} | true; echo ${{PIPESTATUS[0]}}; cat {err}"
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120).stdout.splitlines()
    assert out == ["141"], out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--method", "pmlr"], "unknown method 'pmlr'; did you mean 'pmrl'?"),
        (["run", "--method", "pmrl", "--task", "synthetc"], "unknown task 'synthetc'; did you mean 'synthetic"),
        (["run", "--method", "pmrl", "--set", "tau3=0.1"], "did you mean"),
        (["run", "--method", "pmrl", "--set", "tau1=abc"], "--set tau1: expected float"),
        (["run", "--method", "pmrl", "--set", "epochs=0"], "--set train.epochs"),
        (["run", "--method", "pmrl", "--set", "novalue"], "--set expects key=value"),
        (["run", "--method", "pmrl", "--device", "cuda"], "no CUDA device"),
        (["run", "--method", "pmrl", "--set", "epochs=true"], "--set epochs: expected int"),
        (["run", "--method", "pmrl", "--set", "data.foo=1"], "adapter 'synthetic' rejected split"),
        (["run", "--method", "pmrl", "--set", "hidden=-3"], "adapter 'synthetic' rejected split"),
        (["run", "--method", "clip", "--set", "temperature=inf"], "must be"),
        (["run", "--method", "gram", "--set", "temperature=inf"], "must be a finite number"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, expected, tmp_path):
    res = _cli(*args, "--results-dir", str(tmp_path))
    assert res.returncode == 2, res.stderr
    assert expected in res.stderr
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.rglob("*.json"))


def test_run_then_skip_then_force(tmp_path, capsys):
    args = ["run", "--method", "clip", "--results-dir", str(tmp_path), *SMALL_ARGS]
    assert main(args) == 0
    files = list(tmp_path.rglob("*.json"))
    assert len(files) == 1 and files[0].parent == tmp_path / "synthetic" / "clip"
    before = files[0].read_text()
    capsys.readouterr()
    assert main(args) == 0
    assert "skip:" in capsys.readouterr().err
    assert files[0].read_text() == before
    assert main([*args, "--force"]) == 0
    out = capsys.readouterr()
    assert "skip:" not in out.err and "clip synthetic seed 0:" in out.out
    assert files[0].read_text() != before  # re-run: new timing and created_at


def test_unwritable_results_dir_is_one_line_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = _cli("run", "--method", "clip", "--results-dir", str(blocker))
    assert res.returncode == 2 and "--results-dir" in res.stderr and "Traceback" not in res.stderr
    assert "epoch" not in res.stderr  # refused before any training
