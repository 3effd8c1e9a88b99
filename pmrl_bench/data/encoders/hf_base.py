"""Shared machinery of the transformers encoder families: locating weights, loading once, identities, batching.

A family module (clip.py, clap.py, ...) subclasses one of `TextEncoder`, `FramesEncoder`,
`WindowedAudioEncoder` and says which transformers class to load and which output to return
(transformers v5 returns `BaseModelOutputWithPooling` from `get_*_features`; `pooled` picks the tensor).

Spec keys common to every family: `family`, `model` (hub id, local directory, or `pkg:<package>/<subdir>` for a
model shipped in an installed Python package), `revision`, `batch_size`, `device`, `dtype` (float32 | float16 |
bfloat16), `store_dtype` (cache storage); media families also take `decode_workers` (decoding threads).
Weights are located without loading them (identity first, weights on the first `encode`), and a model is
loaded once per (class, directory, device, dtype) per process, so the text and media towers of one
checkpoint share it. A model whose checkpoint leaves parameters uninitialised is refused.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from pmrl_bench.data.items import MediaRef, file_sha256, media_name
from pmrl_bench.errors import BenchError, unknown_name

COMMON_KEYS = frozenset({"family", "model", "revision", "batch_size", "device", "dtype", "store_dtype"})
MEDIA_KEYS = frozenset({"decode_workers"})  # threads decoding media (PyAV/soundfile release the GIL); not in the key
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
HUB_PATTERNS = ["*.json", "*.txt", "*.model", "*.tiktoken", "merges.txt", "vocab*"]


@dataclass(frozen=True)
class ModelSource:
    """A model located on disk: the directory, the name to record, and the hub revision if it came from the Hub."""

    directory: Path
    name: str
    revision: str | None


def _weights_missing_error(modality: str, model: str, why: str) -> BenchError:
    return BenchError(
        f"encoder for {modality!r}: model {model!r} is not available ({why}). "
        f"Looked for a local directory of that name, then the Hugging Face cache "
        f"({os.environ.get('HF_HUB_CACHE') or os.environ.get('HF_HOME') or '~/.cache/huggingface'}); downloads are "
        f"{'off (HF_HUB_OFFLINE=1)' if os.environ.get('HF_HUB_OFFLINE') in ('1', 'true', 'TRUE') else 'on'}. "
        f"Provide it either by downloading it once where there is internet (`hf download {model}`, then copy the "
        f"Hugging Face cache here), or by pointing at a local directory written by save_pretrained (config.json, "
        f"the weights, and the processor/tokenizer files): --set encoders.{modality}.model=/path/to/model_dir"
    )


def package_model_dir(model: str, modality: str) -> tuple[Path, str]:
    """(directory, package name) of `pkg:<package>/<subdir>`: a model shipped inside an installed Python package."""
    import importlib.util

    package, _, subdir = model.removeprefix("pkg:").partition("/")
    found = importlib.util.find_spec(package) if package else None
    if found is None or not found.submodule_search_locations:
        raise BenchError(
            f"encoder for {modality!r}: model {model!r} lives in the Python package {package!r}, which is not "
            f"installed; install it (`pip install {package.replace('_', '-')}`) or point at a local directory "
            f"with --set encoders.{modality}.model=/path/to/model_dir"
        )
    return Path(next(iter(found.submodule_search_locations))) / subdir, package


def locate_model(spec: dict[str, Any], modality: str) -> ModelSource:
    """The model directory of a spec: `pkg:<package>/<subdir>`, a local directory, or a Hub snapshot
    (downloaded unless HF_HUB_OFFLINE=1)."""
    model = str(spec.get("model") or "")
    if not model:
        raise BenchError(f"encoder for {modality!r}: no `model` given; set encoders.{modality}.model=<hub id or directory>")
    if model.startswith("pkg:"):
        directory, package = package_model_dir(model, modality)
        if not (directory / "config.json").is_file():
            raise BenchError(f"encoder for {modality!r}: {directory} (from {model!r}) has no config.json")
        return ModelSource(directory.resolve(), package, None)
    local = Path(model).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise BenchError(f"encoder for {modality!r}: {local} has no config.json; point at a directory written "
                             f"by save_pretrained (--set encoders.{modality}.model=/path/to/model_dir)")
        return ModelSource(local.resolve(), local.resolve().name, None)
    if model.startswith(("/", ".", "~")) or model.count("/") > 1 or local.exists():
        raise _weights_missing_error(modality, model, f"no directory {local}")
    return _hub_snapshot(model, spec.get("revision"), modality)


def _hub_snapshot(repo_id: str, revision: str | None, modality: str) -> ModelSource:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        directory = Path(snapshot_download(repo_id, revision=revision, allow_patterns=[*HUB_PATTERNS, "*.safetensors"]))
        if not any(p.suffix in WEIGHT_SUFFIXES for p in directory.iterdir()):
            directory = Path(snapshot_download(repo_id, revision=revision, allow_patterns=[*HUB_PATTERNS, "*.bin"]))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _weights_missing_error(modality, repo_id, why[:200]) from None
    commit = directory.name if directory.parent.name == "snapshots" else revision
    return ModelSource(directory, repo_id, commit)


@cache
def _dir_fingerprint(directory: Path, stamp: tuple[tuple[str, int, int], ...]) -> tuple[str, str]:
    """(sha256 of the weight files, sha256 of the other files: configs, processor, tokenizer)."""
    weights, other = hashlib.sha256(), hashlib.sha256()
    for name, _, _ in stamp:
        target = weights if name.endswith(WEIGHT_SUFFIXES) else other
        target.update(f"{name}:{file_sha256(directory / name)}\n".encode())
    return weights.hexdigest(), other.hexdigest()


def source_identity(source: ModelSource) -> dict[str, Any]:
    """Model name plus Hub revision, or the sha256 of a local directory's weights and of its other files."""
    if source.revision:
        return {"model": source.name, "revision": source.revision}
    stamp = tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in source.directory.iterdir()
                         if p.is_file() and not p.name.startswith(".") and p.suffix != ".md"))
    weights, other = _dir_fingerprint(source.directory, stamp)
    return {"model": source.name, "weights_sha256": weights, "files_sha256": other}


def public_dict(obj: Any) -> dict[str, Any]:
    """A processor's settings as JSON-able values (arrays replaced by their sha256)."""
    out = {}
    for key, value in sorted(obj.to_dict().items()):
        if isinstance(value, np.ndarray):
            value = "sha256:" + hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
        out[key] = value
    return out


def pooled(output: Any) -> Tensor:
    """The projected embedding of a `get_*_features` call (a tensor in v4, `.pooler_output` in v5)."""
    return output if isinstance(output, Tensor) else output.pooler_output


def _quiet_transformers() -> None:
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


@cache
def load_model(class_name: str, directory: Path, device: str, dtype: str, allowed_missing: tuple[str, ...]) -> Any:
    """A frozen transformers model in eval mode, loaded once per process; refuses uninitialised parameters."""
    import transformers

    _quiet_transformers()
    cls = getattr(transformers, class_name)
    try:
        model, info = cls.from_pretrained(str(directory), dtype=DTYPES[dtype], output_loading_info=True)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise BenchError(f"cannot load {class_name} from {directory}: {str(exc).strip().splitlines()[0][:300]}") from None
    missing = sorted(k for k in info.get("missing_keys", ()) if not any(a in k for a in allowed_missing))
    if missing or info.get("mismatched_keys"):
        raise BenchError(f"{directory} does not hold a complete {class_name}: "
                         f"{len(missing)} missing and {len(info.get('mismatched_keys') or ())} mismatched parameters "
                         f"(first: {(missing or sorted(map(str, info['mismatched_keys'])))[0]}); check encoders.*.model")
    model.eval().requires_grad_(False)
    return model.to(device)


class HFEncoderBase:
    """A frozen transformers encoder of one modality; subclasses set the class to load and the embedding."""

    family: ClassVar[str] = ""
    modality: ClassVar[str] = ""
    model_class: ClassVar[str] = ""
    output: ClassVar[str] = ""
    extra_keys: ClassVar[frozenset[str]] = frozenset()
    allowed_missing: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec: dict[str, Any]) -> None:
        for key in spec:
            if key not in COMMON_KEYS | self.extra_keys:
                raise unknown_name(f"key for encoder family {self.family!r}", key, COMMON_KEYS | self.extra_keys)
        self.spec = dict(spec)
        self.source = locate_model(spec, self.modality)
        self.device = str(spec.get("device") or "cpu")
        self.dtype = str(spec.get("dtype", "float32"))
        if self.dtype not in DTYPES:
            raise unknown_name("encoder dtype", self.dtype, DTYPES)
        if self.device == "cpu" and self.dtype == "float16":
            raise BenchError(f"encoder for {self.modality!r}: float16 needs a GPU; use dtype float32 or bfloat16 on the CPU")
        _quiet_transformers()
        try:
            self.setup()
        except OSError as exc:
            raise BenchError(f"encoder for {self.modality!r}: {self.source.directory} lacks processor/tokenizer files "
                             f"({str(exc).strip().splitlines()[0][:200]})") from None

    def setup(self) -> None:
        """Load the processor or tokenizer (cheap; the weights load on the first encode)."""

    @property
    def model(self) -> Any:
        """The frozen model (loaded on first use, shared by every encoder on the same checkpoint)."""
        return load_model(self.model_class, self.source.directory, self.device, self.dtype, self.allowed_missing)

    def preprocessing(self) -> dict[str, Any]:
        """Preprocessing settings that change the output (part of the cache key)."""
        return {}

    def identity(self) -> dict[str, Any]:
        """Every field that changes the output bytes (device and batch size excluded)."""
        return {"family": self.family, **source_identity(self.source), "model_class": self.model_class,
                "output": self.output, "dtype": self.dtype, **self.preprocessing()}

    def notes(self) -> dict[str, Any]:
        """Facts observed while encoding (e.g. silent audio) recorded with the cache entry."""
        return {}

    def _float_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]


class TextEncoder(HFEncoderBase):
    """Texts -> pooled embeddings through the checkpoint's tokenizer (truncated at `max_text_tokens`)."""

    modality = "text"
    extra_keys = frozenset({"max_text_tokens"})
    padding: ClassVar[str | bool] = True
    model_inputs: ClassVar[tuple[str, ...]] = ("input_ids", "attention_mask")

    def setup(self) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(self.source.directory))
        limit = self.default_max_length()
        self.max_length = int(self.spec.get("max_text_tokens") or limit)

    def default_max_length(self) -> int:
        """The model's maximum text length (the tokenizer's, capped at 512)."""
        return min(int(getattr(self.tokenizer, "model_max_length", 512) or 512), 512)

    def preprocessing(self) -> dict[str, Any]:
        return {"tokenizer": type(self.tokenizer).__name__, "max_length": self.max_length, "padding": self.padding,
                "truncation_side": self.tokenizer.truncation_side}

    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        """Pooled embeddings of a tokenised batch."""
        raise NotImplementedError

    def encode(self, inputs: Sequence[str]) -> Tensor:
        """[len(inputs), D] float32 text embeddings."""
        tokens = self.tokenizer(list(inputs), padding=self.padding, truncation=True, max_length=self.max_length,
                                return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in tokens.items() if k in self.model_inputs}
        with torch.inference_mode():
            return self.embed(batch).float().cpu()


def decode_all(func: Any, refs: Sequence[MediaRef], workers: int) -> list[Any]:
    """`func(ref)` for every reference, in order, decoded by a pool of threads when workers > 1."""
    if workers <= 1 or len(refs) <= 1:
        return [func(ref) for ref in refs]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(workers, len(refs))) as pool:
        return list(pool.map(func, refs))


class MediaEncoder(HFEncoderBase):
    """A media family: decodes its inputs with `decode_workers` threads (default: up to 4 CPU cores)."""

    @property
    def decode_workers(self) -> int:
        """Number of decoding threads."""
        return int(self.spec.get("decode_workers", min(4, os.cpu_count() or 1)))


def is_image(ref: MediaRef) -> bool:
    """True if a reference names a still image (by extension)."""
    return Path(media_name(ref)).suffix.lower() in IMAGE_SUFFIXES


def segment_mean(values: Tensor, counts: Sequence[int]) -> Tensor:
    """Mean of consecutive row groups of the given sizes: [sum(counts), D] -> [len(counts), D]."""
    index = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    out = torch.zeros(len(counts), values.shape[1], dtype=values.dtype).index_add_(0, index, values)
    return out / torch.tensor(counts, dtype=values.dtype).unsqueeze(1)


class FramesEncoder(MediaEncoder):
    """Images or videos -> mean of the L2-normalised embeddings of K uniformly sampled frames ("meanP")."""

    modality = "vision"
    extra_keys = MEDIA_KEYS | {"frames", "frame_rule"}

    def setup(self) -> None:
        from transformers import AutoImageProcessor

        self.processor = AutoImageProcessor.from_pretrained(str(self.source.directory), backend="pil")
        self.frames = int(self.spec.get("frames", 8))
        self.frame_rule = str(self.spec.get("frame_rule", "centre"))

    def preprocessing(self) -> dict[str, Any]:
        from pmrl_bench.data.media import backend_identity

        return {"image_processor": type(self.processor).__name__, "processor": public_dict(self.processor),
                "frames": self.frames, "frame_rule": self.frame_rule,
                "pooling": "mean of L2-normalised frame embeddings", **backend_identity()}

    def frames_of(self, ref: MediaRef) -> list[Any]:
        """One image, or `frames` frames sampled uniformly over a video."""
        from pmrl_bench.data.media import load_image, sample_video_frames

        return [load_image(ref)] if is_image(ref) else sample_video_frames(ref, self.frames, self.frame_rule)

    def embed_frames(self, pixel_values: Tensor) -> Tensor:
        """Per-frame embeddings of [n, 3, H, W] pixels."""
        raise NotImplementedError

    def encode(self, inputs: Sequence[MediaRef]) -> Tensor:
        """[len(inputs), D] float32 pooled frame embeddings."""
        frames = decode_all(self.frames_of, inputs, self.decode_workers)
        flat = [f for group in frames for f in group]
        pixels = self.processor(images=flat, return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            emb = self.embed_frames(pixels.to(self.device, self._float_dtype())).float().cpu()
        emb = torch.nn.functional.normalize(emb, dim=-1)
        return segment_mean(emb, [len(g) for g in frames])


class WindowedAudioEncoder(MediaEncoder):
    """Audio -> mean of the L2-normalised embeddings of consecutive windows covering the whole clip."""

    modality = "audio"
    extra_keys = MEDIA_KEYS | {"window_s"}
    max_empty_names: ClassVar[int] = 10

    def setup(self) -> None:
        from transformers import AutoFeatureExtractor

        self.extractor = AutoFeatureExtractor.from_pretrained(str(self.source.directory))
        self.rate = int(self.extractor.sampling_rate)
        default = self.default_window()
        self.window = int(round(float(self.spec["window_s"]) * self.rate)) if "window_s" in self.spec else default
        self._empty: list[str] = []

    def default_window(self) -> int:
        """Window length in samples that the feature extractor takes without cropping."""
        raise NotImplementedError

    def preprocessing(self) -> dict[str, Any]:
        from pmrl_bench.data.media import backend_identity

        return {"feature_extractor": type(self.extractor).__name__, "extractor": public_dict(self.extractor),
                "rate": self.rate, "window_samples": self.window, "hop_samples": self.window,
                "pooling": "mean of L2-normalised window embeddings (consecutive windows, last partial window "
                           "kept if at least half a window)", "empty_audio": "one window of silence",
                **backend_identity()}

    def embed_windows(self, windows: list[np.ndarray]) -> Tensor:
        """Embeddings of a list of waveforms (each at most one window long)."""
        raise NotImplementedError

    def encode(self, inputs: Sequence[MediaRef]) -> Tensor:
        """[len(inputs), D] float32 pooled window embeddings."""
        from pmrl_bench.data.media import audio_windows, load_audio

        waves = decode_all(lambda ref: load_audio(ref, self.rate), inputs, self.decode_workers)
        self._empty.extend(media_name(ref) for ref, wave in zip(inputs, waves, strict=True) if wave.size == 0)
        groups = [audio_windows(wave, self.window) for wave in waves]
        flat = [w for g in groups for w in g]
        step = max(1, int(self.spec.get("batch_size", 16)))
        with torch.inference_mode():
            emb = torch.cat([self.embed_windows(flat[s : s + step]).float().cpu() for s in range(0, len(flat), step)])
        emb = torch.nn.functional.normalize(emb, dim=-1)
        return segment_mean(emb, [len(g) for g in groups])

    def notes(self) -> dict[str, Any]:
        if not self._empty:
            return {}
        return {"empty_audio": len(self._empty), "empty_audio_first": [Path(n).name for n in self._empty[: self.max_empty_names]]}
