"""Bounded readers shared by every stage: only regular files of bounded size, YAML with bounded expansion."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from pmrl_bench.errors import BenchError

MAX_FILE_BYTES = 256 * 2**20  # result records, task/sweep/profile YAML, state and cache metadata
MAX_YAML_NODES = 100_000  # scalars, sequences and mappings after alias expansion


class YamlSyntaxError(BenchError):
    """Text that is not valid YAML."""


class UnsafeFile(OSError):
    """A file that is not read: not a regular file, or larger than the bound."""


def read_bytes(path: str | Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; UnsafeFile for FIFOs, devices, folders, big files.

    The file is opened without blocking (a FIFO with no writer must not hang) and checked on its open
    descriptor, so a symlink to /dev/zero or a file swapped after a check is refused too.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"{path}: not a regular file ({_kind(info.st_mode)})")
        if info.st_size > limit:
            raise UnsafeFile(f"{path}: {info.st_size} bytes, more than the {limit}-byte limit")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise UnsafeFile(f"{path}: more than the {limit}-byte limit")
    return data


def read_text(path: str | Path, limit: int = MAX_FILE_BYTES) -> str:
    """UTF-8 text of a regular, bounded file (UnicodeDecodeError for other encodings)."""
    return read_bytes(path, limit).decode("utf-8")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a plain file"


def _expanded_size(node: yaml.Node, limit: int) -> int:
    """Nodes of the document with every alias expanded; stops counting past `limit`; cycles count as too big."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(n: yaml.Node) -> int:
        key = id(n)
        if key in sizes:
            return sizes[key]
        if key in open_:
            return limit + 1
        if isinstance(n, yaml.ScalarNode):
            return 1
        open_.add(key)
        children = [c for pair in n.value for c in pair] if isinstance(n, yaml.MappingNode) else n.value
        total = 1
        for child in children:
            total += size(child)
            if total > limit:
                break
        open_.discard(key)
        sizes[key] = total
        return total

    return size(node)


def load_yaml(text: str, source: str, max_nodes: int = MAX_YAML_NODES) -> Any:
    """Parse YAML safely (no tags that run code) with at most `max_nodes` nodes after alias expansion.

    Raises BenchError naming `source` for invalid YAML, too many nodes (alias bombs) or too deep nesting.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, max_nodes) > max_nodes:
            raise BenchError(f"{source}: YAML expands to more than {max_nodes} nodes (aliases); write it out plainly")
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"{source}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise BenchError(f"{source}: YAML nested too deeply") from None
    finally:
        loader.dispose()


def read_yaml_file(path: str | Path, what: str) -> Any:
    """Read and parse a YAML file with the bounds above; every problem is one BenchError line."""
    try:
        text = read_text(path)
    except UnicodeDecodeError:
        raise BenchError(f"{path}: {what} is not UTF-8 text") from None
    except UnsafeFile as exc:
        raise BenchError(f"cannot read {what}: {exc}") from None
    except OSError as exc:
        raise BenchError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    return load_yaml(text, str(path))
