"""The linter configured in pyproject.toml passes on the whole tree (ruff is a test extra)."""

from __future__ import annotations

import subprocess
import sys

from pmrl_bench.paths import ROOT


def test_ruff_is_clean():
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
