"""Small shared helpers for the engine tests."""

from __future__ import annotations

# Tiny synthetic runs (a second or two each): fewer items and epochs than the task's defaults.
SMALL = [
    ("data.sizes", {"train": 512, "val": 128, "test": 128}),
    ("epochs", 3),
    ("batch_size", 64),
    ("head_hidden", 32),
    ("embed_dim", 16),
]
SMALL_ARGS = [f"--set={k}={v}".replace("'", "") for k, v in SMALL]


def skip_without(tool: str) -> None:
    """Skip the calling test, with a reason, when a SLURM client tool is not on PATH; fail instead under CI=true."""
    import os
    import shutil

    import pytest

    if shutil.which(tool) is None:
        reason = f"SLURM client tool {tool!r} not on PATH (needed to build the sbatch script)"
        if os.environ.get("CI") == "true" or os.environ.get("PMRL_REQUIRE_SLURM") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
