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
    assert "created_at" in files[0].read_text()
