"""Environment metadata recorded in every result (versions, device, CPU, host, git commit)."""

from __future__ import annotations

import platform
import socket
import subprocess
from functools import cache
from importlib import metadata
from typing import Any

from pmrl_bench import __version__
from pmrl_bench.paths import ROOT
from pmrl_bench.runtime import compile_requested

PACKAGES = ("numpy", "scipy", "torch", "transformers", "datasets", "safetensors", "av", "soundfile", "soxr", "submitit")


@cache
def git_commit() -> str | None:
    """The source tree's commit, with '+dirty' when it has uncommitted changes (outside results/); None outside git."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--", ".", ":!results"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("+dirty" if dirty else "")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@cache
def cpu_model() -> str:
    """The processor's model name (floating-point results of training can differ between CPU models)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str) -> dict[str, Any]:
    """Metadata of the process that produced a result."""
    import torch

    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") and torch.cuda.is_available() else None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": device,
        "gpu": gpu,
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "git_commit": git_commit(),
        "pmrl_bench": __version__,
        "packages": {name: _version(name) for name in PACKAGES},
        "torch_threads": torch.get_num_threads(),
        "compile": compile_requested(),
    }
