"""FeatureCache: checksummed safetensors files of encoded features, keyed by everything that changes the bytes.

Layout (docs/datasets.md 4.1), one entry per (dataset, split, modality, encoder, key):

    <root>/<dataset>/<split>/<modality>/<encoder_slug>/<key[:16]>/
        embeddings.safetensors   "embeddings": [N, D]; header metadata repeats the key (and the ids up to 10k rows)
        ids.json                 ordered row ids (row i <-> ids[i]; text rows are "<item_id>#<k>")
        meta.json                every key field in clear, N, D, dtype, sha256 of embeddings.safetensors,
                                 versions, created_at, plus what the writer adds (missing ids, ...)

An entry is written into a temporary directory and renamed into place, `meta.json` last, so a reader
sees a complete entry or none. `load` verifies the key, the checksum and the id list; a partial or
corrupt entry is reported in one line on stderr and treated as absent (the caller recomputes and
overwrites it). Root: `--set cache_dir=...`, else $PMRL_BENCH_CACHE, else ~/.cache/pmrl_bench/features.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from pmrl_bench.data.items import file_sha256, ids_sha256
from pmrl_bench.safeio import read_bytes

LOG = logging.getLogger(__name__)

CACHE_FORMAT = 1
HEADER_IDS_MAX_ROWS = 10_000
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
EntryState = Literal["present", "missing", "stale", "corrupt"]


def default_cache_root(config_data: dict[str, Any] | None = None) -> Path:
    """The cache root: data.cache_dir, else $PMRL_BENCH_CACHE, else ~/.cache/pmrl_bench/features."""
    explicit = (config_data or {}).get("cache_dir") or os.environ.get("PMRL_BENCH_CACHE")
    return Path(explicit).expanduser() if explicit else Path.home() / ".cache" / "pmrl_bench" / "features"


def canonical_json(obj: Any) -> str:
    """Sorted, compact JSON (the text that a cache key hashes)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def slug(text: str) -> str:
    """A file-name-safe short form of a name (letters, digits, '.', '_', '-')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:80] or "x"


@dataclass(frozen=True)
class CacheKey:
    """Where an entry lives and the full set of fields its digest hashes."""

    dataset: str
    split: str
    modality: str
    encoder_slug: str
    fields: dict[str, Any]

    @property
    def digest(self) -> str:
        """sha256 hex of the canonical JSON of every field (including dataset, split and modality)."""
        full = {"format": CACHE_FORMAT, "dataset": self.dataset, "split": self.split, "modality": self.modality,
                **self.fields}
        return hashlib.sha256(canonical_json(full).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedFeatures:
    """A verified cache entry: float32 values, row ids and the entry's meta."""

    values: Tensor
    ids: tuple[str, ...]
    meta: dict[str, Any]
    path: Path


def _report(message: str) -> None:
    LOG.warning("feature cache: %s", message)


class FeatureCache:
    """Safetensors feature store under one root directory (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    def slug_dir(self, key: CacheKey) -> Path:
        """The folder that holds every key of one (dataset, split, modality, encoder)."""
        return self.root / slug(key.dataset) / slug(key.split) / slug(key.modality) / slug(key.encoder_slug)

    def entry_dir(self, key: CacheKey) -> Path:
        """The folder of one entry."""
        return self.slug_dir(key) / key.digest[:16]

    def _verify(self, key: CacheKey, directory: Path) -> CachedFeatures | str:
        """The entry's features, or why it cannot be used."""
        from safetensors import SafetensorError, safe_open

        meta_path, emb_path, ids_path = (directory / n for n in ("meta.json", "embeddings.safetensors", "ids.json"))
        if not meta_path.is_file():
            return "incomplete (no meta.json)"
        try:
            meta = json.loads(read_bytes(meta_path))
            ids = json.loads(read_bytes(ids_path))
        except (OSError, ValueError) as exc:
            return f"unreadable meta.json/ids.json ({exc.__class__.__name__})"
        if not isinstance(meta, dict) or not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return "meta.json is not an object or ids.json not a list of strings"
        ids = tuple(ids)
        if meta.get("cache_key") != key.digest:
            return "key mismatch (meta.json names another key)"
        if not emb_path.is_file():
            return "embeddings.safetensors missing"
        try:
            checksum = file_sha256(emb_path)
        except OSError as exc:
            return f"unreadable embeddings.safetensors ({exc.__class__.__name__})"
        if checksum != meta.get("sha256"):
            return "checksum mismatch in embeddings.safetensors"
        try:
            with safe_open(str(emb_path), framework="pt") as fh:
                values = fh.get_tensor("embeddings")
        except (SafetensorError, OSError, KeyError) as exc:
            return f"unreadable embeddings.safetensors ({exc})"
        if values.ndim != 2 or len(values) != len(ids) or len(ids) != meta.get("n_rows"):
            return f"shape {tuple(values.shape)} does not match {len(ids)} ids"
        if ids_sha256(ids) != meta.get("ids_sha256"):
            return "ids.json does not match its recorded hash"
        return CachedFeatures(values=values.to(torch.float32, copy=True), ids=ids, meta=meta, path=directory)

    def load(self, key: CacheKey) -> CachedFeatures | None:
        """The verified entry for `key`; None if absent, or if partial/corrupt (reported in one line)."""
        directory = self.entry_dir(key)
        if not directory.exists():
            return None
        found = self._verify(key, directory)
        if isinstance(found, str):
            _report(f"{directory} is unusable: {found}; recomputing")
            return None
        return found

    def state(self, key: CacheKey) -> tuple[EntryState, str]:
        """'present' | 'corrupt' (with the reason) | 'stale' (other keys of the same encoder exist) | 'missing'."""
        directory = self.entry_dir(key)
        if directory.exists():
            found = self._verify(key, directory)
            return ("corrupt", found) if isinstance(found, str) else ("present", str(directory))
        parent = self.slug_dir(key)
        others = sorted(p.name for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")) if parent.is_dir() else []
        if others:
            return "stale", f"{parent} holds other keys: {', '.join(others)}"
        return "missing", str(directory)

    def store(self, key: CacheKey, values: Tensor, ids: list[str] | tuple[str, ...],
              meta: dict[str, Any] | None = None, dtype: str = "float32") -> Path:
        """Write an entry atomically (temporary folder + rename, meta.json last) and return its folder."""
        from safetensors.torch import save_file

        ids = tuple(ids)
        if values.ndim != 2 or len(values) != len(ids):
            raise ValueError(f"values {tuple(values.shape)} do not match {len(ids)} ids")
        final = self.entry_dir(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        tmp.mkdir()
        try:
            header = {"cache_key": key.digest, "dataset": key.dataset, "split": key.split, "modality": key.modality,
                      "ids_sha256": ids_sha256(ids)}
            if len(ids) <= HEADER_IDS_MAX_ROWS:
                header["ids"] = json.dumps(list(ids), ensure_ascii=False)
            emb = tmp / "embeddings.safetensors"
            save_file({"embeddings": values.detach().to("cpu", DTYPES[dtype]).contiguous()}, str(emb), metadata=header)
            (tmp / "ids.json").write_text(json.dumps(list(ids), ensure_ascii=False), encoding="utf-8")
            full_meta = {
                **(meta or {}),
                "cache_key": key.digest, "key_fields": key.fields, "dataset": key.dataset, "split": key.split,
                "modality": key.modality, "encoder_slug": key.encoder_slug, "n_rows": len(ids),
                "dim": int(values.shape[1]), "dtype": dtype, "normalised": False, "ids_sha256": ids_sha256(ids),
                "sha256": file_sha256(emb), "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            for name in ("embeddings.safetensors", "ids.json"):
                with open(tmp / name, "rb") as fh:
                    os.fsync(fh.fileno())
            (tmp / "meta.json").write_text(json.dumps(full_meta, indent=1, ensure_ascii=False, default=str),
                                           encoding="utf-8")
            for _attempt in range(5):
                if final.exists():
                    if isinstance(self._verify(key, final), CachedFeatures):
                        break  # a concurrent writer (parallel sweep job) stored the same key: keep its entry
                    trash = final.parent / f".{final.name}.old-{secrets.token_hex(4)}"
                    try:
                        os.replace(final, trash)
                    except FileNotFoundError:
                        pass
                    shutil.rmtree(trash, ignore_errors=True)
                try:
                    os.replace(tmp, final)
                    break
                except OSError:  # another writer renamed its entry into place first; look again
                    continue
            else:
                raise OSError(f"could not place cache entry {final} (concurrent writers)")
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return final
