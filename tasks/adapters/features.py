"""Pre-extracted features as a first-class input (docs/datasets.md section 4): no media, no encoders.

Two sources, per split and modality:

* a feature store in the FeatureCache layout: `<features_root>/<dataset>/<split>/<modality>/<encoder>/<key>/`
  holding embeddings.safetensors, ids.json and meta.json (checked against its sha256); when a modality
  holds several encoders or keys, `select: {modality: "<encoder>" or "<encoder>/<key>"}` picks one;
* explicit files: `files: {<split>: {<modality>: path or {path, encoder, pooling}}}`, each a `.safetensors`
  file (tensor `embeddings`, ids as JSON in the header metadata `ids` or in `<stem>.ids.json`) or a `.npy`
  array (ids in `<stem>.ids.json` or `<stem>.ids.txt`).

Text rows are named `<item_id>#<k>`; every other modality needs exactly one row per item. Items absent
from some modality are dropped and reported (count and first ids in SplitFeatures.info).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from pmrl_bench.data.encoding import FIRST_MISSING_SHOWN, POLICIES
from pmrl_bench.data.features import ModalityFeatures, SplitFeatures
from pmrl_bench.data.items import file_sha256, ids_sha256
from pmrl_bench.data.sources import check_options
from pmrl_bench.errors import BenchError
from pmrl_bench.registry import register_adapter


def _ids_beside(path: Path, header: dict[str, str] | None) -> list[str]:
    if header and "ids" in header:
        return json.loads(header["ids"])
    for candidate in (path.with_suffix(".ids.json"), path.with_suffix(".ids.txt"), path.parent / "ids.json"):
        if candidate.is_file():
            if candidate.suffix == ".txt":
                return [line for line in candidate.read_text(encoding="utf-8").splitlines() if line]
            return [str(x) for x in json.loads(candidate.read_text(encoding="utf-8"))]
    raise BenchError(f"{path}: no ids (expected JSON `ids` in the safetensors metadata, or {path.stem}.ids.json)")


def read_feature_file(path: Path) -> tuple[torch.Tensor, list[str]]:
    """[N, D] float32 values and their N row ids from a .safetensors or .npy file."""
    if not path.is_file():
        raise BenchError(f"features: {path} not found")
    if path.suffix == ".npy":
        import numpy as np

        values = torch.from_numpy(np.load(path, allow_pickle=False)).float()
        ids = _ids_beside(path, None)
    elif path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            names = list(fh.keys())
            name = "embeddings" if "embeddings" in names else names[0] if len(names) == 1 else None
            if name is None:
                raise BenchError(f"{path}: no tensor named 'embeddings' among {names}")
            values = fh.get_tensor(name).float()
            ids = _ids_beside(path, fh.metadata())
    else:
        raise BenchError(f"features: {path} is neither .safetensors nor .npy")
    if values.ndim != 2 or len(values) != len(ids):
        raise BenchError(f"{path}: {tuple(values.shape)} values for {len(ids)} ids")
    return values, ids


def _from_store(root: Path, dataset: str, split: str, modality: str, choice: str | None) -> tuple[Any, list[str], dict]:
    base = root / dataset / split / modality
    entries = sorted(p.parent for p in base.glob("*/*/meta.json"))
    if choice:
        entries = [e for e in entries if f"{e.parent.name}/{e.name}".startswith(choice)]
    if len(entries) != 1:
        found = ", ".join(f"{e.parent.name}/{e.name}" for e in entries) or "none"
        raise BenchError(f"features: {base} must hold exactly one entry for {modality!r} (found: {found}); "
                         f"choose with adapter_args.select.{modality}=<encoder>[/<key>]")
    entry = entries[0]
    meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
    emb = entry / "embeddings.safetensors"
    if "sha256" in meta and file_sha256(emb) != meta["sha256"]:
        raise BenchError(f"features: {emb} does not match the sha256 in its meta.json (corrupt copy?)")
    values, ids = read_feature_file(emb)
    return values, ids, {"encoder": meta.get("key_fields", {}).get("encoder", meta.get("encoder")),
                         "key": meta.get("cache_key", meta.get("sha256"))}


@register_adapter("features")
def features(split: str, modalities: list[str], features_root: str | None = None, dataset: str | None = None,
             files: dict[str, dict[str, Any]] | None = None, select: dict[str, str] | None = None,
             caption_policy: str = "all", **options: Any) -> SplitFeatures:
    """Pre-extracted feature files (FeatureCache layout or explicit safetensors/npy files) as a split."""
    check_options("features", options)
    if caption_policy not in POLICIES:
        raise BenchError(f"features: caption_policy {caption_policy!r}: expected one of {', '.join(POLICIES)}")
    loaded: dict[str, tuple[torch.Tensor, list[str], dict[str, Any]]] = {}
    for modality in modalities:
        spec = (files or {}).get(split, {}).get(modality)
        if spec is not None:
            spec = {"path": spec} if isinstance(spec, str) else dict(spec)
            path = Path(spec.pop("path")).expanduser()
            values, ids = read_feature_file(path)
            loaded[modality] = (values, ids, {"encoder": spec or None, "key": file_sha256(path)})
        elif features_root and dataset:
            loaded[modality] = _from_store(Path(features_root).expanduser(), dataset, split, modality,
                                           (select or {}).get(modality))
        else:
            raise BenchError(f"features: no features for split {split!r} modality {modality!r}; give "
                             f"adapter_args.files.{split}.{modality}=<file> or features_root + dataset")
    media = [m for m in modalities if m != "text"]
    for m in media:
        if len(set(loaded[m][1])) != len(loaded[m][1]):
            raise BenchError(f"features: modality {m!r} of split {split!r} has duplicate ids (one row per item needed)")
    order = loaded[media[0]][1] if media else list(dict.fromkeys(r.rsplit("#", 1)[0] for r in loaded["text"][1]))
    present = [set(loaded[m][1]) for m in media]
    kept = [i for i in order if all(i in s for s in present)]
    text_items = [r.rsplit("#", 1)[0] for r in loaded["text"][1]] if "text" in loaded else []
    union = list(dict.fromkeys([*(i for m in media for i in loaded[m][1]), *text_items]))
    kept_set = set(kept)
    dropped = [i for i in union if i not in kept_set]
    position = {iid: k for k, iid in enumerate(kept)}
    out: dict[str, ModalityFeatures] = {}
    for m in media:
        values, ids, _ = loaded[m]
        row_of = {iid: r for r, iid in enumerate(ids)}
        idx = torch.tensor([row_of[i] for i in kept], dtype=torch.long)
        out[m] = ModalityFeatures(values=values[idx], item_index=torch.arange(len(kept)), row_ids=tuple(kept))
    if "text" in loaded:
        values, ids, _ = loaded["text"]
        rows = [(r, rid) for r, rid in enumerate(ids) if rid.rsplit("#", 1)[0] in position]
        if caption_policy == "paragraph" and len({rid.rsplit("#", 1)[0] for _, rid in rows}) != len(rows):
            raise BenchError(f"features: caption_policy 'paragraph' needs one pre-extracted paragraph row per item "
                             f"('<item_id>#0'); split {split!r} has several text rows for some items")
        if caption_policy == "first":
            rows = [(r, rid) for r, rid in rows if "#" not in rid or rid.rsplit("#", 1)[1] == "0"]
        idx = torch.tensor([r for r, _ in rows], dtype=torch.long)
        out["text"] = ModalityFeatures(values=values[idx], row_ids=tuple(rid for _, rid in rows),
                                       item_index=torch.tensor([position[rid.rsplit("#", 1)[0]] for _, rid in rows]))
    info = {"source": "pre-extracted features", "dataset": dataset, "split": split, "caption_policy": caption_policy,
            "n_items": len(kept), "n_missing": len(dropped), "missing_first_ids": dropped[:FIRST_MISSING_SHOWN],
            "kept_ids_sha256": ids_sha256(kept),
            "encoders": {m: loaded[m][2]["encoder"] for m in modalities},
            "cache_keys": {m: loaded[m][2]["key"] for m in modalities}}
    if "text" in out:
        info["n_text_rows"] = len(out["text"].row_ids)
    return SplitFeatures(split=split, item_ids=tuple(kept), modalities=out, info=info)
