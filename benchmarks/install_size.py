"""Installed size of the core install versus the full one (`pmrl_bench[test]`), from this environment.

The dependency closure of each requirement set is resolved from the installed distributions' own metadata
(requirements with their extras and markers, recursively), and each distribution's size is the sum of the
files its RECORD lists. Nothing is downloaded: the figures are for the versions installed here (torch CPU);
benchmarks/install_time.py measures the download and install time into fresh venvs.

    python benchmarks/install_size.py
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project_requirements(extras: set[str]) -> list[Requirement]:
    """The requirements of this checkout's pyproject.toml with `extras` (self-references expanded)."""
    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
    reqs, todo, done = [Requirement(r) for r in project["dependencies"]], set(extras), set()
    while todo:
        extra = todo.pop()
        done.add(extra)
        for text in project["optional-dependencies"][extra]:
            req = Requirement(text)
            if _norm(req.name) == _norm(project["name"]):
                todo |= set(req.extras) - done
            else:
                reqs.append(req)
    return reqs


def closure(extras: set[str]) -> dict[str, metadata.Distribution]:
    """Every installed distribution that pmrl_bench[extras] needs, by normalised name."""
    seen: dict[str, metadata.Distribution] = {}
    visited: set[tuple[str, frozenset[str]]] = set()
    todo = [(r, {"extra": ""}) for r in project_requirements(extras)]
    while todo:
        req, env = todo.pop()
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        key = (_norm(req.name), frozenset(req.extras))
        if key in visited:
            continue
        visited.add(key)
        dist = metadata.distribution(req.name)
        seen[_norm(req.name)] = dist
        for text in dist.requires or []:
            sub = Requirement(text)
            for extra in req.extras or {""}:
                todo.append((sub, {"extra": extra}))
    return seen


def installed_bytes(dist: metadata.Distribution) -> int:
    """Bytes of the files the distribution's RECORD lists."""
    total = 0
    for f in dist.files or []:
        path = Path(dist.locate_file(f))
        if path.is_file():
            total += path.stat().st_size
    return total


def main() -> None:
    """Print the table of benchmarks/RESULTS.md."""
    rows = {"core": closure(set()), "core + [slurm, plots]": closure({"slurm", "plots"}),
            "full ([test])": closure({"test"})}
    torch_mb = installed_bytes(metadata.distribution("torch")) / 2**20
    print(f"torch alone: {torch_mb:,.0f} MiB")
    print("| install | distributions | installed size | without torch |")
    print("| --- | --- | --- | --- |")
    for label, dists in rows.items():
        mb = sum(installed_bytes(d) for d in dists.values()) / 2**20
        print(f"| {label} | {len(dists)} | {mb:,.0f} MiB | {mb - torch_mb:,.0f} MiB |")
    core, full = rows["core"], rows["full ([test])"]
    print("only in the full install:", ", ".join(sorted(set(full) - set(core))))


if __name__ == "__main__":
    main()
