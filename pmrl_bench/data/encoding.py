"""Encode an adapter's ItemSet into SplitFeatures through the frozen encoders and the FeatureCache.

`encode_split(spec, config, items, role=..., device=...)` is the stable entry point:

1. items lacking media for a task modality are dropped and reported (count and first ids), never silently;
2. per modality a cache key is built from the dataset, its annotation identity, the split, the hash
   of the kept id list, the inputs, the encoder's identity (weights, preprocessing, backends), the
   storage dtype and the torch/transformers versions; a verified cache entry is read, otherwise the
   encoder runs in batches (tqdm bar) and the entry is written;
3. text is encoded per caption (rows "<item_id>#<k>"), or per paragraph (all captions joined with
   single spaces, rows "<item_id>#0") under the `paragraph` policy; the `first` policy keeps row #0;
4. `SplitFeatures.info` holds what belongs in the result's protocol: caption policy, N, missing
   media, the kept ids' sha256, the encoders' identities and the cache keys.

The caption policy comes from the task (`caption_policy[role]`) unless the run sets
`data.caption_policy` (a policy name, or a mapping {train: ..., test: ...}).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from pmrl_bench.data.cache import CacheKey, FeatureCache, default_cache_root, slug
from pmrl_bench.data.features import ModalityFeatures, SplitFeatures
from pmrl_bench.data.items import BlobRef, Item, ItemSet, check_labels, ids_sha256, media_name
from pmrl_bench.data.media_hash import media_digests
from pmrl_bench.errors import BenchError
from pmrl_bench.runtime import Progress
from pmrl_bench.task import TaskSpec

POLICIES = ("all", "first", "paragraph")
FIRST_MISSING_SHOWN = 10
DEFAULT_BATCH = {"text": 256}
DEFAULT_MEDIA_BATCH = 16


def caption_policy(spec: TaskSpec, config: dict[str, Any], role: str) -> str:
    """The caption policy of `role`: `data.caption_policy` of the run if set, else the task's."""
    override = config.get("data", {}).get("caption_policy")
    if isinstance(override, dict):
        override = override.get(role)
    policy = override or spec.caption_policy.get(role, "all")
    if policy not in POLICIES:
        raise BenchError(f"caption_policy {policy!r} for {role}: expected one of {', '.join(POLICIES)}")
    return policy


@dataclass(frozen=True)
class TextRows:
    """The texts to encode and how feature rows map back to items."""

    texts: tuple[str, ...]
    row_ids: tuple[str, ...]
    item_index: tuple[int, ...]
    view: str  # "captions" (every caption) or "paragraph" (one joined text per item)


def text_rows(items: Sequence[Item], paragraph: bool, modality: str = "text") -> TextRows:
    """Per-text rows ("<id>#<k>") of a text modality, or one paragraph row per item ("<id>#0") joined by spaces."""
    texts, row_ids, index = [], [], []
    for i, item in enumerate(items):
        own = item.texts_of(modality)
        if paragraph:
            if own:
                texts.append(" ".join(t.strip() for t in own if t.strip()))
                row_ids.append(f"{item.item_id}#0")
                index.append(i)
            continue
        for k, text in enumerate(own):
            texts.append(text)
            row_ids.append(f"{item.item_id}#{k}")
            index.append(i)
    return TextRows(tuple(texts), tuple(row_ids), tuple(index), "paragraph" if paragraph else "captions")


def select_first_caption(rows: ModalityFeatures) -> ModalityFeatures:
    """Keep only each item's first caption (row ids ending in '#0')."""
    keep = [r for r, rid in enumerate(rows.row_ids) if rid.rsplit("#", 1)[1] == "0"]
    idx = torch.tensor(keep, dtype=torch.long)
    return ModalityFeatures(values=rows.values[idx], item_index=rows.item_index[idx],
                            row_ids=tuple(rows.row_ids[r] for r in keep))


def _media_fingerprint(refs: Sequence[Any], memo_root: Path) -> str:
    """sha256 over (name, content sha256) of each media file, (name, size) of each blob: any change of a
    file's content changes the key (digests memoised by size and mtime, see data/media_hash.py)."""
    files = [ref for ref in refs if not isinstance(ref, BlobRef)]
    contents = iter(media_digests(files, memo_root))
    digest = hashlib.sha256()
    for ref in refs:
        ident = ref.size if isinstance(ref, BlobRef) else next(contents)
        digest.update(json.dumps([os.path.basename(media_name(ref)), ident]).encode("utf-8"))
    return digest.hexdigest()


def _major_minor(version: str) -> str:
    return ".".join(version.split("+")[0].split(".")[:2])


def _framework_versions() -> dict[str, str]:
    from importlib import metadata

    return {"torch": _major_minor(torch.__version__), "transformers": _major_minor(metadata.version("transformers"))}


def encoder_spec(config: dict[str, Any], modality: str, device: str) -> dict[str, Any]:
    """The resolved `encoders.<modality>` mapping, with the run's device unless the mapping sets one."""
    spec = config.get("encoders", {}).get(modality)
    if not isinstance(spec, dict) or "family" not in spec:
        raise BenchError(
            f"no encoder configured for modality {modality!r}: add `encoders: {{{modality}: {{family: ..., model: ...}}}}` "
            f"to the task file or pass --set encoders.{modality}.family=... --set encoders.{modality}.model=..."
        )
    spec = copy.deepcopy(spec)
    spec.setdefault("device", device)
    return spec


def encoder_slug(identity: dict[str, Any]) -> str:
    """Folder name of an encoder in the cache: family plus the model's last path component."""
    model = str(identity.get("model", "")).rstrip("/").split("/")[-1]
    return slug(f"{identity.get('family', 'encoder')}-{model}" if model else str(identity.get("family", "encoder")))


def run_encoder(encoder: Any, inputs: Sequence[Any], batch_size: int, desc: str, progress: bool | None) -> Tensor:
    """Encode `inputs` in batches with progress (a bar on a terminal, periodic log lines otherwise); float32 [n, D]."""
    out = []
    with Progress(len(inputs), desc, enabled=progress) as bar:
        for start in range(0, len(inputs), batch_size):
            batch = inputs[start : start + batch_size]
            out.append(encoder.encode(batch).detach().to("cpu", torch.float32))
            bar.update(len(batch))
    if not out:
        raise BenchError(f"{desc}: nothing to encode")
    return torch.cat(out)


def encode_texts(config: dict[str, Any], modality: str, texts: Sequence[str], row_ids: Sequence[str], dataset: str,
                 view: str, desc: str, device: str = "cpu", cache: FeatureCache | None = None) -> Tensor:
    """Features of extra texts (class prompts, questions, answer candidates) by the task's encoder of `modality`,
    read from or written to the feature cache under (dataset, view); float32 `[len(texts), D]`."""
    from pmrl_bench.data.encoders import build_encoder

    cache = cache or FeatureCache(default_cache_root(config.get("data")))
    encoder = build_encoder(encoder_spec(config, modality, device))
    identity = encoder.identity()
    fields = {"texts_sha256": hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest(),
              "row_ids_sha256": ids_sha256(row_ids), "encoder": identity}
    key = CacheKey(dataset, view, modality, encoder_slug(identity), fields)
    hit = cache.load(key)
    if hit is not None and hit.ids == tuple(row_ids):
        return hit.values
    values = run_encoder(encoder, list(texts), DEFAULT_BATCH.get("text", 256), desc, progress=False)
    cache.store(key, values, tuple(row_ids), meta={"n_texts": len(texts)})
    return values


@dataclass(frozen=True)
class ModalityPlan:
    """What one modality of a split needs: inputs, row ids, item index, cache key and the encoder."""

    modality: str
    inputs: tuple[Any, ...]
    row_ids: tuple[str, ...]
    item_index: tuple[int, ...]
    key: CacheKey
    encoder: Any
    batch_size: int
    identity: dict[str, Any]


def plan_split(spec: TaskSpec, config: dict[str, Any], items: ItemSet, role: str, device: str = "cpu",
               build: Callable[[dict[str, Any]], Any] | None = None) -> tuple[list[ModalityPlan], dict[str, Any]]:
    """Cache keys and inputs of every modality of a split, without encoding (also used by `data check`)."""
    from pmrl_bench.data.encoders import build_encoder

    build = build or build_encoder
    policy = caption_policy(spec, config, role)
    kept, dropped = items.usable(spec.modalities, spec.text_modalities)
    if not kept:
        raise BenchError(
            f"{items.dataset} {items.split}: no item has media for every modality {spec.modalities} "
            f"({len(dropped)} items lack some; first: {', '.join(dropped[:5])}); check the media folders"
        )
    kept_ids = tuple(i.item_id for i in kept)
    base = {"annotations": items.annotation_identity, "kept_ids_sha256": ids_sha256(kept_ids),
            "n_items": len(kept), **_framework_versions()}
    plans = []
    for modality in spec.modalities:
        enc_spec = encoder_spec(config, modality, device)
        encoder = build(enc_spec)
        identity = encoder.identity()
        if modality in spec.text_modalities:
            rows = text_rows(kept, paragraph=policy == "paragraph", modality=modality)
            inputs, row_ids, index, view = rows.texts, rows.row_ids, rows.item_index, rows.view
            fingerprint = hashlib.sha256(json.dumps(list(inputs), ensure_ascii=False).encode("utf-8")).hexdigest()
        else:
            inputs = tuple(i.media[modality] for i in kept)
            row_ids, index, view = kept_ids, tuple(range(len(kept))), "media"
            fingerprint = _media_fingerprint(inputs, default_cache_root(config.get("data")))
        store_dtype = str(enc_spec.get("store_dtype", "float32"))
        fields = {**base, "view": view, "inputs_sha256": fingerprint, "row_ids_sha256": ids_sha256(row_ids),
                  "encoder": identity, "store_dtype": store_dtype}
        key = CacheKey(items.dataset, items.split, modality, encoder_slug(identity), fields)
        batch = int(enc_spec.get("batch_size", DEFAULT_BATCH.get(spec.modality_types[modality], DEFAULT_MEDIA_BATCH)))
        plans.append(ModalityPlan(modality, tuple(inputs), tuple(row_ids), tuple(index), key, encoder, batch, identity))
    info = {
        "dataset": items.dataset, "split": items.split, "caption_policy": policy, "n_items": len(kept),
        "n_missing": len(dropped), "missing_first_ids": list(dropped[:FIRST_MISSING_SHOWN]),
        "missing_by_modality": {m: len(ids) for m, ids in sorted(items.missing.items()) if m in spec.modalities},
        "kept_ids_sha256": ids_sha256(kept_ids), "annotations": items.annotation_identity,
    }
    for m in spec.text_modalities:
        if no_text := [i.item_id for i in kept if not i.texts_of(m)]:
            suffix = "" if m == "text" else f"_{m}"
            info.update({f"n_without_text{suffix}": len(no_text),
                         f"without_text{suffix}_first_ids": no_text[:FIRST_MISSING_SHOWN]})
    return plans, info


def encode_split(spec: TaskSpec, config: dict[str, Any], items: ItemSet, role: str, device: str = "cpu",
                 cache: FeatureCache | None = None, progress: bool | None = None) -> SplitFeatures:
    """Features of every task modality for the usable items of a split, read from or written to the cache."""
    cache = cache or FeatureCache(default_cache_root(config.get("data")))
    plans, info = plan_split(spec, config, items, role, device)
    kept, _ = items.usable(spec.modalities, spec.text_modalities)
    modalities: dict[str, ModalityFeatures] = {}
    info.update(encoders={}, cache_keys={}, features_sha256={})
    for plan in plans:
        hit = cache.load(plan.key)
        if hit is not None and hit.ids == plan.row_ids:
            values = hit.values
            notes = hit.meta.get("notes", {})
        else:
            desc = f"{items.dataset}/{items.split} {plan.modality}"
            values = run_encoder(plan.encoder, plan.inputs, plan.batch_size, desc, progress)
            notes = dict(getattr(plan.encoder, "notes", lambda: {})())
            cache.store(plan.key, values, plan.row_ids, meta={"notes": notes, "device": device},
                        dtype=plan.key.fields["store_dtype"])
        feats = ModalityFeatures(values=values, item_index=torch.tensor(plan.item_index, dtype=torch.long),
                                 row_ids=plan.row_ids)
        if plan.modality in spec.text_modalities and info["caption_policy"] == "first":
            feats = select_first_caption(feats)
        modalities[plan.modality] = feats
        info["encoders"][plan.modality] = plan.identity
        info["cache_keys"][plan.modality] = plan.key.digest
        # what the method saw: the bytes of the encoded rows (tells a machine's encoder drift from training noise)
        info["features_sha256"][plan.modality] = hashlib.sha256(values.contiguous().numpy().tobytes()).hexdigest()
        if notes:
            info.setdefault("encoder_notes", {})[plan.modality] = notes
    if "text" in modalities:
        info["n_text_rows"] = len(modalities["text"].row_ids)
    labels, label_names = _labels(kept, items.label_names)
    groups = tuple(str(i.fields["group"]) for i in kept) if kept and all("group" in i.fields for i in kept) else ()
    return SplitFeatures(split=items.split, item_ids=tuple(i.item_id for i in kept), modalities=modalities,
                         labels=labels, label_names=label_names, groups=groups, info=info)


def _labels(kept: Sequence[Item], names: tuple[str, ...]) -> tuple[Tensor | None, tuple[str, ...]]:
    """Class indices (into `names`, or the sorted label names) when every item has a label."""
    if not kept or any(i.label is None for i in kept):
        return None, ()
    names = names or tuple(sorted({str(i.label) for i in kept}))
    check_labels(kept, names)
    lookup = {n: k for k, n in enumerate(names)}
    return torch.tensor([lookup[str(i.label)] for i in kept], dtype=torch.long), names
