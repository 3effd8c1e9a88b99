"""Packaging: the pmrl_bench package plus the repository's built-in folders shipped inside it as pmrl_bench/_shipped/.

The repository keeps methods/, tasks/ (+ tasks/adapters/) and slurm/ at its top level; the wheel carries them
as pmrl_bench/_shipped/{methods,tasks,slurm}, where pmrl_bench/paths.py looks first. Metadata is in pyproject.toml.
"""

from setuptools import find_packages, setup

SHIPPED = {"methods": "methods", "tasks": "tasks", "tasks.adapters": "tasks/adapters", "slurm": "slurm"}

setup(
    packages=find_packages(include=["pmrl_bench", "pmrl_bench.*"]) + [f"pmrl_bench._shipped.{p}" for p in SHIPPED],
    package_dir={f"pmrl_bench._shipped.{p}": folder for p, folder in SHIPPED.items()},
)
