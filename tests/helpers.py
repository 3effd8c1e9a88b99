"""Small shared helpers for the engine tests."""

from __future__ import annotations

# Tiny synthetic runs (a second or two each): fewer items and epochs than the task's defaults.
SMALL = [
    ("data.sizes", {"train": 512, "test": 128}),
    ("epochs", 3),
    ("batch_size", 64),
    ("head_hidden", 32),
    ("embed_dim", 16),
]
SMALL_ARGS = [f"--set={k}={v}".replace("'", "") for k, v in SMALL]
