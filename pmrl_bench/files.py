"""Atomic file writes shared by every stage (records, checkpoints, leaderboards, sweep state)."""

from __future__ import annotations

import os
import secrets
import socket
import time
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically: unique hidden temp file in the same folder, fsync, os.replace.

    The temp name is unique across nodes (host, pid, random) and removed whatever happens, also when a
    signal interrupts the write; the folder is fsynced after the rename so the new name is durable.
    Temp files that killed writers left in the folder are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(path.parent)  # what killed writers left behind
    tmp = path.parent / f".{path.name}.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 `text` to `path` atomically (see atomic_write_bytes)."""
    atomic_write_bytes(path, text.encode("utf-8"))


STALE_TEMP_AGE_S = 24 * 3600  # a temp file of another host is taken as abandoned after this long


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def stale_temp_files(folder: Path, now: float | None = None) -> list[Path]:
    """Temp files of atomic writers in `folder` whose writer is gone (dead pid on this host, or a day old)."""
    host = socket.gethostname()
    now = time.time() if now is None else now
    out = []
    try:
        entries = sorted(Path(folder).glob(".*.tmp"))
    except OSError:
        return []
    for path in entries:
        parts = path.name[: -len(".tmp")].rsplit(".", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        try:
            age = now - path.lstat().st_mtime
        except OSError:
            continue
        mine = parts[0].endswith(f".{host}")
        if (mine and not _pid_alive(int(parts[1]))) or age > STALE_TEMP_AGE_S:
            out.append(path)
    return out


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Remove the abandoned temp files of `folder` (see stale_temp_files) and return them."""
    removed = []
    for path in stale_temp_files(folder):
        try:
            path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed
