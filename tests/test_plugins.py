"""Plug-ins without forking: in-process registration, --include, plug-in folders and entry points; their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pmrl_bench
from pmrl_bench import plugins, registry
from pmrl_bench.cli import main
from pmrl_bench.errors import BenchError
from pmrl_bench.paths import ADAPTERS_DIR, METHODS_DIR, TASKS_DIR
from pmrl_bench.task import load_task

FAST = ["--set", "epochs=1", "--set", "max_steps=2"]

# A complete objective written on the public toolkit, as a user would write it outside the repository.
PLUGIN = '''
"""A user's objective: mean over modality pairs of the symmetric InfoNCE at a fixed temperature."""

import torch

from pmrl_bench.toolkit import (
    Method, anchor_and_tuple, cosine_mean, present_modalities, register_method, symmetric_info_nce, unit,
)


@register_method("{name}")
class Mine(Method):
    """Mine: fixed-temperature pairwise InfoNCE."""

    defaults = {{"temperature": 0.1}}

    def loss(self, z):
        """Mean symmetric InfoNCE over all pairs."""
        names = present_modalities(z, self.modalities, self.name)
        stacked = torch.stack([unit(z[m]) for m in names])
        pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
        return symmetric_info_nce(stacked, pairs, torch.tensor(1 / self.params["temperature"])).mean()

    def similarity(self, query, candidates):
        """Mean cosine."""
        anchor, parts, transposed = anchor_and_tuple(query, candidates)
        out = cosine_mean(anchor, parts)
        return out.T if transposed else out
'''

TINY_TASK = f"include: {TASKS_DIR / 'synthetic.yaml'}\ndescription: a plug-in task\n"


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch):
    """Each test starts with the built-in names only and leaves nothing registered behind."""
    for var in (plugins.ENV_PATH, plugins.ENV_INCLUDE):
        monkeypatch.setenv(var, "")
    snapshot = [(t, dict(t)) for t in (registry.METHODS, registry.ADAPTERS, registry.TASKS)]
    imported = set(plugins._IMPORTED)
    yield
    builtin = {str(METHODS_DIR), str(ADAPTERS_DIR)}
    for table, saved in snapshot:  # drop what the test registered; built-ins imported meanwhile stay
        for name in set(table) - set(saved):
            if str(Path(registry._origin(table[name])).parent) not in builtin:
                del table[name]
    plugins._IMPORTED.clear()
    plugins._IMPORTED.update(imported)
    registry._scan.cache_clear()
    load_task.cache_clear()


def write_plugin(path: Path, name: str) -> Path:
    """The user's objective registered as `name`, written to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PLUGIN.format(name=name), encoding="utf-8")
    return path


def records(root: Path) -> list[dict]:
    """The records written under a results folder."""
    return [json.loads(p.read_text()) for p in sorted(root.rglob("*.json"))]


def test_in_process_registration_runs_through_the_api_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(PLUGIN.format(name="mine-inproc"), "<notebook>", "exec"), namespace)
    base = load_task("synthetic").model_dump(exclude={"name"})
    small = {**base, "adapter_args": {**base["adapter_args"], "sizes": {"train": 300, "val": 60, "test": 60}}}
    pmrl_bench.register_task("tiny-inproc")(lambda: small)
    out = pmrl_bench.evaluate(namespace["Mine"], "tiny-inproc", seeds=[0, 1], overrides={"epochs": 1})
    assert [(r.method, r.task, r.seed, r.status) for r in out] == [
        ("mine-inproc", "tiny-inproc", 0, "ok"), ("mine-inproc", "tiny-inproc", 1, "ok")]
    assert out[0].protocol["test"]["n_items"] == 60
    assert list(tmp_path.iterdir()) == []
    assert "mine-inproc" in registry.method_names()


def test_include_file_and_module_register_for_the_cli(tmp_path, monkeypatch, capsys):
    plugin = write_plugin(tmp_path / "outside" / "my_objective.py", "mine-file")
    assert main(["run", "--include", str(plugin), "--method", "mine-file", *FAST,
                 "--results-dir", str(tmp_path / "res")]) == 0
    assert [r["method"] for r in records(tmp_path / "res")] == ["mine-file"]
    write_plugin(tmp_path / "mods" / "my_pkg_objective.py", "mine-module")
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    assert main(["list", "methods", "--include", "my_pkg_objective"]) == 0
    assert "mine-module" in capsys.readouterr().out


def test_plugin_folder_by_option_and_by_environment(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "plugins"
    write_plugin(folder / "methods" / "mine.py", "mine-folder")
    (folder / "tasks").mkdir()
    (folder / "tasks" / "tiny-folder.yaml").write_text(TINY_TASK)
    assert main(["run", "--include-path", str(folder), "--method", "mine-folder", "--task", "tiny-folder", *FAST,
                 "--results-dir", str(tmp_path / "res")]) == 0
    assert [(r["method"], r["task"]) for r in records(tmp_path / "res")] == [("mine-folder", "tiny-folder")]
    registry._scan.cache_clear()
    monkeypatch.setenv(plugins.ENV_PATH, str(folder))
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "mine-folder" in out and "tiny-folder" in out and "a plug-in task" in out


def test_entry_points_of_an_installed_distribution(tmp_path, monkeypatch):
    site = tmp_path / "site"
    write_plugin(site / "mine_ep_pkg" / "__init__.py", "mine-ep")
    (site / "mine_ep_pkg" / "tiny.yaml").write_text(TINY_TASK)
    (site / "mine_ep_pkg" / "tasks.py").write_text("from pathlib import Path\nTINY = Path(__file__).with_name('tiny.yaml')\n")
    info = site / "mine_ep_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mine-ep-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[pmrl_bench.methods]\nmine-ep = mine_ep_pkg:Mine\n\n[pmrl_bench.tasks]\ntiny-ep = mine_ep_pkg.tasks:TINY\n")
    monkeypatch.syspath_prepend(str(site))
    registry._scan.cache_clear()
    assert "mine-ep" in registry.method_names()
    (record,) = pmrl_bench.evaluate("mine-ep", "tiny-ep", overrides={"epochs": 1, "max_steps": 2})
    assert (record.method, record.task, record.status) == ("mine-ep", "tiny-ep", "ok")
    assert load_task("tiny-ep").description == "a plug-in task"


def one_line_error(capsys, args: list[str]) -> str:
    """Run the CLI, check exit code 2 and a single `error:` line as the only output, return it."""
    assert main(args) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert captured.out == ""  # no partial listing before the error
    return err


def test_bad_plugins_are_one_line_errors_naming_the_source(tmp_path, monkeypatch, capsys):
    err = one_line_error(capsys, ["list", "--include", "no_such_plugin_module"])
    assert "--include no_such_plugin_module: cannot import it (ModuleNotFoundError" in err
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    assert "RuntimeError: boom" in one_line_error(capsys, ["list", "--include", str(broken)])
    (tmp_path / "empty").mkdir()
    err = one_line_error(capsys, ["list", "--include-path", str(tmp_path / "empty")])
    assert "no plug-in files found" in err and str(tmp_path / "empty") in err
    clash = write_plugin(tmp_path / "clash.py", "clip")
    err = one_line_error(capsys, ["list", "--include", str(clash)])
    assert "duplicate method name 'clip'" in err and str(METHODS_DIR / "clip.py") in err and str(clash) in err


def test_entry_point_that_raises_and_name_defined_in_two_folders(tmp_path, monkeypatch, capsys):
    site = tmp_path / "site"
    (site / "raising_pkg").mkdir(parents=True)
    (site / "raising_pkg" / "__init__.py").write_text("raise ImportError('missing dependency xyz')\n")
    info = site / "raising_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: raising-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[pmrl_bench.methods]\nraiser = raising_pkg:Method\n")
    monkeypatch.syspath_prepend(str(site))
    registry._scan.cache_clear()
    err = one_line_error(capsys, ["run", "--method", "raiser"])
    assert "entry point raiser = raising_pkg:Method (distribution raising-pkg)" in err
    assert "ImportError: missing dependency xyz" in err
    one, two = tmp_path / "one", tmp_path / "two"
    write_plugin(one / "methods" / "a.py", "twice")
    write_plugin(two / "methods" / "b.py", "twice")
    registry._scan.cache_clear()
    err = one_line_error(capsys, ["list", "--include-path", str(one), "--include-path", str(two)])
    assert "duplicate method name 'twice'" in err and str(one / "methods" / "a.py") in err
    assert str(two / "methods" / "b.py") in err


def test_in_process_duplicate_names_both_places():
    namespace: dict = {}
    exec(compile(PLUGIN.format(name="mine-dup"), "<first>", "exec"), namespace)
    with pytest.raises(BenchError, match="duplicate method name 'mine-dup'"):
        exec(compile(PLUGIN.format(name="mine-dup"), "<second>", "exec"), {})
    with pytest.raises(BenchError, match=f"duplicate method name 'gram': defined in {METHODS_DIR / 'gram.py'}"):
        exec(compile(PLUGIN.format(name="gram"), "<third>", "exec"), {})
