"""The wheel carries the built-in methods, tasks, task id lists and SLURM profiles inside the package.

The full check (install into a fresh venv, run list / run / leaderboard / compare / sweep --dry-run from an
empty folder) is .ci/wheel-check, which CI runs before the test suite.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

from pmrl_bench.paths import ROOT


def test_wheel_ships_every_builtin_folder_inside_the_package(tmp_path):
    # built from a copy without build/: setuptools reuses an in-tree build/ folder, which can hide a missing file
    source = tmp_path / "src"
    skipped = {"build", "dist", ".git", "__pycache__", ".venv", "test-artefacts"}
    shutil.copytree(ROOT, source, ignore=lambda folder, names: {
        n for n in names if n in skipped or n.endswith(".egg-info") or (folder == str(ROOT) and n == "results")})
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("pmrl_bench-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {  # every file of the built-in folders, so that a new data folder (e.g. tasks/suites/) is shipped
        f"pmrl_bench/_shipped/{path.relative_to(ROOT).as_posix()}"
        for folder in ("methods", "tasks", "slurm")
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert {"pmrl_bench/_shipped/tasks/tuxpaint_split.json", "pmrl_bench/_shipped/tasks/suites/default.yaml"} <= expected
    assert expected <= names, sorted(expected - names)
    packaged = {p.relative_to(ROOT).as_posix() for p in (ROOT / "pmrl_bench").rglob("*.py")}
    assert packaged <= names, sorted(packaged - names)
    assert not any(n.startswith(("tests/", "results/", "benchmarks/")) for n in names)
