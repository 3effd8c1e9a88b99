"""The planning and reporting verbs import no torch (it costs seconds per call): each runs in one fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from pmrl_bench.paths import ROOT
from pmrl_bench.registry import _literal_attrs, get_method, method_defaults, method_modality_counts, scanned
from tests.records_factory import simulated_ranks, write

# Runs the verbs in order in one interpreter and prints {verb: [exit code, torch imported after it]}. Sweep
# submission goes through the real submit_tasks with a fake submitit executor (no job is started).
SCRIPT = """
import json, sys
import pmrl_bench.cluster.executors as executors
from pmrl_bench.cli import main

class FakeExecutor:
    def map_array(self, fn, specs):
        return [type("Job", (), {"job_id": str(4000000 + i)})() for i in range(len(specs))]

executors.make_executor = lambda *a: FakeExecutor()
seen = {}
for name, argv in json.loads(sys.argv[1]):
    seen[name] = [main(argv), "torch" in sys.modules]
print(json.dumps(seen))
"""


def test_planning_and_reporting_verbs_import_no_torch(tmp_path: Path) -> None:
    results = tmp_path / "results"
    for seed in range(3):
        for method, quality in (("pmrl", 0.6), ("clip", 0.5)):
            write(results, "synthetic", method, seed, {"t2va/rank": simulated_ranks(60, quality, seed)})
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({
        "methods": ["pmrl", "triangle"], "tasks": ["synthetic"], "seeds": [0, 1], "set": {"epochs": 2},
        "executor": "local", "results_dir": str(tmp_path / "sweep-results"), "logs_dir": str(tmp_path / "logs")}))
    verbs = [
        ("list", ["list"]),
        ("sweep --dry-run", ["sweep", str(sweep), "--dry-run"]),
        ("sweep", ["sweep", str(sweep)]),
        ("status", ["status", str(sweep)]),
        ("validate", ["validate", str(results)]),
        ("leaderboard", ["leaderboard", "--results-dir", str(results), "--out", str(tmp_path / "L.md")]),
        ("compare", ["compare", "--task", "synthetic", "--methods", "pmrl", "clip", "--results-dir", str(results)]),
    ]
    out = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(verbs)], cwd=ROOT, capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {name: [0, False] for name, _ in verbs}, out.stderr
    assert "submitted 4 runs in" in out.stdout and "pending" in out.stdout
    assert len(json.loads((tmp_path / "logs" / "s" / "state.json").read_text())["runs"]) == 4


def test_literal_defaults_read_from_the_syntax_tree_equal_the_imported_classes() -> None:
    for name, entry in scanned("method").items():
        found = _literal_attrs(entry.path, name)
        assert found is not None and "modality_counts" in found[0], name  # literal: planning imports no method
        assert found[0]["defaults"] == get_method(name).defaults, name
        assert method_defaults(name) == found[0]["defaults"]
        assert method_modality_counts(name) == get_method(name).modality_counts
