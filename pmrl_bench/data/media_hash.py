"""Content digests of media files, memoised by (size, modification time) in the feature cache root.

A media file's sha256 is computed once and kept in <cache root>/media-sha256.json keyed by its absolute
path with its size and mtime; a file whose size or mtime changed is hashed again, so replacing a recording by
another of the same size changes the cache key (a `touch` alone costs one hash and changes nothing).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pmrl_bench.data.items import file_sha256
from pmrl_bench.files import atomic_write_text
from pmrl_bench.safeio import read_bytes

MEMO_NAME = "media-sha256.json"


def _load_memo(path: Path) -> dict[str, list[Any]]:
    try:
        memo = json.loads(read_bytes(path))
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) else {}


def media_digest(path: str | Path, memo: dict[str, list[Any]]) -> str | None:
    """sha256 of one media file (None if it cannot be read), updating `memo` when it was (re)hashed."""
    key = os.path.abspath(path)
    try:
        st = os.stat(key)
    except OSError:
        return None
    entry = memo.get(key)
    if isinstance(entry, list) and len(entry) == 3 and entry[:2] == [st.st_size, st.st_mtime_ns]:
        return entry[2]
    try:
        digest = file_sha256(key)
    except OSError:
        return None
    memo[key] = [st.st_size, st.st_mtime_ns, digest]
    return digest


def media_digests(paths: Sequence[str | Path], memo_root: Path) -> list[str | None]:
    """Content digests of `paths`, reusing and refreshing the memo under `memo_root` (best effort)."""
    memo_path = Path(memo_root) / MEMO_NAME
    memo = _load_memo(memo_path)
    before = {k: v for k, v in memo.items() if isinstance(v, list)}
    out = [media_digest(p, memo) for p in paths]
    if any(before.get(k) != v for k, v in memo.items()):
        try:
            atomic_write_text(memo_path, json.dumps(memo, separators=(",", ":")))
        except OSError:  # a read-only cache still gets correct digests, only slower next time
            pass
    return out
