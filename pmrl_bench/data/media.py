"""Media decoding without torchvision/torchaudio (docs/datasets.md section 3): PyAV, soundfile, soxr, Pillow.

Stable API (used by the encoders and by other adapters):

* `load_image(ref, background=(255, 255, 255)) -> PIL.Image` in RGB (alpha composited on `background`);
* `frame_indices(n_frames, k, rule)` and `sample_video_frames(ref, num_frames, rule) -> list[PIL.Image]`:
  K frames chosen uniformly over the whole video ("centre": centres of K equal segments; "linspace":
  K evenly spaced indices including the first and last frame);
* `load_audio(ref, rate) -> np.ndarray` float32 mono (mean of channels) at `rate` Hz, resampled with
  soxr; an empty array when the file has no audio stream (silent video);
* `audio_windows(wave, window)` consecutive, non-overlapping windows (never a random crop);
* `backend_identity()` the decoder/resampler versions that belong in a feature-cache key.

A media reference is a path or a `pmrl_bench.data.items.BlobRef`. Undecodable files raise `BenchError`
naming the file.
"""

from __future__ import annotations

import io
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pmrl_bench.data.items import BlobRef, MediaRef, media_name
from pmrl_bench.errors import BenchError

FrameRule = Literal["centre", "linspace"]
SEEK_MIN_DURATION_S = 60.0  # videos at least this long are sampled by seeking instead of decoding everything
_SOUNDFILE_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".mp3"}


def _source(ref: MediaRef) -> str | io.BytesIO:
    """An argument that PyAV, soundfile and Pillow all open: a path string or an in-memory file."""
    if isinstance(ref, BlobRef):
        return io.BytesIO(ref.read())
    return str(ref)


def _suffix(ref: MediaRef) -> str:
    return Path(media_name(ref)).suffix.lower()


def load_image(ref: MediaRef, background: tuple[int, int, int] = (255, 255, 255)) -> Any:
    """An RGB `PIL.Image`; transparent pixels are composited onto `background`."""
    from PIL import Image

    try:
        with Image.open(_source(ref)) as img:
            img.load()
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:  # tRNS of P, L and RGB images too
                rgba = img.convert("RGBA")
                canvas = Image.new("RGBA", rgba.size, (*background, 255))
                return Image.alpha_composite(canvas, rgba).convert("RGB")
            return img.convert("RGB")
    except (OSError, ValueError) as exc:
        raise BenchError(f"cannot decode image {media_name(ref)}: {exc}") from None


def frame_indices(n_frames: int, k: int, rule: FrameRule = "centre") -> np.ndarray:
    """K frame indices spread uniformly over `n_frames` (repeats when the video has fewer than K frames)."""
    if n_frames < 1 or k < 1:
        raise ValueError(f"need n_frames >= 1 and k >= 1, got {n_frames}, {k}")
    if rule == "centre":
        idx = np.floor((np.arange(k) + 0.5) * n_frames / k)
    elif rule == "linspace":
        idx = np.round(np.linspace(0, n_frames - 1, k))
    else:
        raise BenchError(f"unknown frame sampling rule {rule!r}; known: centre, linspace")
    return np.clip(idx.astype(np.int64), 0, n_frames - 1)


def _sample_times(duration: float, k: int, rule: FrameRule) -> np.ndarray:
    if rule == "centre":
        return (np.arange(k) + 0.5) * duration / k
    return np.linspace(0.0, duration, k, endpoint=False) if k > 1 else np.zeros(1)


def _open(ref: MediaRef) -> Any:
    import av

    try:
        return av.open(_source(ref))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise BenchError(f"cannot open media {media_name(ref)}: {exc}") from None


def _count_video_frames(ref: MediaRef) -> int:
    """Frames of the first video stream: the container's count, else the number of demuxed packets."""
    with _open(ref) as container:
        stream = container.streams.video[0]
        if stream.frames:
            return int(stream.frames)
        return sum(1 for p in container.demux(stream) if p.size)


def _seek_frames(ref: MediaRef, k: int, rule: FrameRule) -> list[Any] | None:
    """Frames at K sample times of a long video by seeking; None if a seek yields no frame."""
    with _open(ref) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        duration = float(stream.duration * stream.time_base) if stream.duration else container.duration / 1e6
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        frames = []
        for t in _sample_times(duration, k, rule) + start:
            container.seek(int(t / stream.time_base), stream=stream, backward=True)
            chosen = None
            for frame in container.decode(stream):
                chosen = frame
                if frame.time is not None and frame.time >= t:
                    break
            if chosen is None:
                return None
            frames.append(chosen.to_image())
        return frames


def sample_video_frames(ref: MediaRef, num_frames: int = 8, rule: FrameRule = "centre") -> list[Any]:
    """`num_frames` RGB `PIL.Image` frames sampled uniformly over the whole video (docs/datasets.md 2.3).

    Short videos are decoded in full and indexed; videos of at least `SEEK_MIN_DURATION_S` seconds
    are sampled by seeking to the sample times, falling back to full decoding if a seek finds nothing.
    """
    import av

    try:
        with _open(ref) as container:
            if not container.streams.video:
                raise BenchError(f"cannot decode video {media_name(ref)}: no video stream")
            stream = container.streams.video[0]
            duration = float(stream.duration * stream.time_base) if stream.duration else (container.duration or 0) / 1e6
        if duration >= SEEK_MIN_DURATION_S:
            frames = _seek_frames(ref, num_frames, rule)
            if frames is not None:
                return frames
        wanted = frame_indices(_count_video_frames(ref), num_frames, rule)
        picked: dict[int, Any] = {}
        last = None
        with _open(ref) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for i, frame in enumerate(container.decode(stream)):
                last = frame
                if i in wanted:
                    picked[i] = frame.to_image()
                if i >= wanted[-1]:
                    break
        if last is None:
            raise BenchError(f"cannot decode video {media_name(ref)}: no frame decoded")
        tail = last.to_image()
        return [picked.get(int(i), tail) for i in wanted]
    except av.FFmpegError as exc:
        raise BenchError(f"cannot decode video {media_name(ref)}: {exc}") from None


def resample(wave: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample mono float32 audio with soxr (scipy's resample_poly if soxr is not installed)."""
    if from_rate == to_rate or wave.size == 0:
        return wave.astype(np.float32, copy=False)
    try:
        import soxr

        return soxr.resample(wave, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)
    except ImportError:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(int(from_rate), int(to_rate))
        return resample_poly(wave, to_rate // g, from_rate // g).astype(np.float32)


def _decode_audio_soundfile(ref: MediaRef) -> tuple[np.ndarray, int] | None:
    import soundfile as sf

    try:
        data, rate = sf.read(_source(ref), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return None
    return data.mean(axis=1), int(rate)


def _decode_audio_pyav(ref: MediaRef) -> tuple[np.ndarray, int]:
    import av

    try:
        with _open(ref) as container:
            if not container.streams.audio:
                return np.zeros(0, np.float32), 0
            stream = container.streams.audio[0]
            rate = int(stream.rate or stream.codec_context.sample_rate)
            converter = av.AudioResampler(format="fltp")
            chunks = []
            for frame in container.decode(stream):
                for out in converter.resample(frame):
                    chunks.append(out.to_ndarray().mean(axis=0))
            for out in converter.resample(None):
                chunks.append(out.to_ndarray().mean(axis=0))
            wave = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
            if stream.duration and stream.time_base:
                expected = int(round(float(stream.duration * stream.time_base) * rate))
                if 0 < expected < len(wave):  # encoder priming/padding (AAC)
                    wave = wave[:expected]
            return wave, rate
    except av.FFmpegError as exc:
        raise BenchError(f"cannot decode audio {media_name(ref)}: {exc}") from None


def load_audio(ref: MediaRef, rate: int) -> np.ndarray:
    """Float32 mono waveform at `rate` Hz; empty when the file has no audio stream (e.g. a silent video).

    Plain audio files go through soundfile; containers (mp4, webm, ...) and whatever soundfile
    refuses go through PyAV. Channels are averaged; resampling uses soxr.
    """
    decoded = _decode_audio_soundfile(ref) if _suffix(ref) in _SOUNDFILE_SUFFIXES or isinstance(ref, BlobRef) else None
    wave, native = decoded if decoded is not None else _decode_audio_pyav(ref)
    return resample(wave, native, rate) if wave.size else wave


def audio_windows(wave: np.ndarray, window: int, min_tail: int | None = None) -> list[np.ndarray]:
    """Consecutive non-overlapping windows of `window` samples covering the clip (never a random crop).

    The last, shorter window is kept when it has at least `min_tail` samples (default: half a window)
    or when it is the only one; an empty clip gives one window of `window` zeros (silence).
    """
    if wave.size == 0:
        return [np.zeros(window, np.float32)]
    min_tail = window // 2 if min_tail is None else min_tail
    starts = range(0, len(wave), window)
    windows = [wave[s : s + window] for s in starts]
    if len(windows) > 1 and len(windows[-1]) < min_tail:
        windows.pop()
    return windows


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@cache
def backend_identity() -> dict[str, Any]:
    """Decoder and resampler versions (part of the feature-cache key of media modalities)."""
    try:
        import soxr  # noqa: F401

        resampler = f"soxr-{_version('soxr')}-HQ"
    except ImportError:
        resampler = f"scipy-resample_poly-{_version('scipy')}"
    return {
        "video_decoder": f"pyav-{_version('av')}",
        "audio_decoder": f"soundfile-{_version('soundfile')}+pyav-{_version('av')}",
        "image_decoder": f"pillow-{_version('pillow')}+trns",  # +trns: RGB/L transparent colours composited
        "resampler": resampler,
    }
