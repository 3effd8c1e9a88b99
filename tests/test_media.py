"""Media decoding: which frames are sampled, audio from files and containers, windows, images, in-memory blobs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixtures_data import frame_code, write_mp4, write_wav

from pmrl_bench.data import media
from pmrl_bench.data.items import BlobRef
from pmrl_bench.errors import BenchError


def _codes(frames: list) -> list[int]:
    """The frame index encoded in each sampled frame's grey level."""
    return [int(round((np.asarray(f, dtype=float).mean() - frame_code(0)) / 15)) for f in frames]


def test_frame_indices_rules():
    assert media.frame_indices(16, 4, "centre").tolist() == [2, 6, 10, 14]
    assert media.frame_indices(48, 8, "linspace").tolist() == [0, 7, 13, 20, 27, 34, 40, 47]
    assert media.frame_indices(3, 8, "centre").tolist() == [0, 0, 0, 1, 1, 2, 2, 2]  # shorter than K: repeats
    with pytest.raises(BenchError, match="frame sampling rule"):
        media.frame_indices(10, 2, "random")


@pytest.mark.parametrize("rule", ["centre", "linspace"])
def test_sample_video_frames_returns_the_planned_frames(tmp_path: Path, rule: str):
    path = write_mp4(tmp_path / "v.mp4", n_frames=16)
    frames = media.sample_video_frames(path, 8, rule)
    assert [f.size for f in frames] == [(32, 32)] * 8 and frames[0].mode == "RGB"
    assert _codes(frames) == media.frame_indices(16, 8, rule).tolist()


def test_webm_without_frame_count_and_clip_shorter_than_k(tmp_path: Path):
    webm = write_mp4(tmp_path / "v.webm", n_frames=12, codec="libvpx-vp9", audio_codec="libopus")
    assert _codes(media.sample_video_frames(webm, 4)) == media.frame_indices(12, 4).tolist()
    short = write_mp4(tmp_path / "short.mp4", n_frames=3)
    assert _codes(media.sample_video_frames(short, 8)) == [0, 0, 0, 1, 1, 2, 2, 2]


def test_long_video_path_seeks_to_the_sample_times(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = write_mp4(tmp_path / "v.mp4", n_frames=16)
    monkeypatch.setattr(media, "SEEK_MIN_DURATION_S", 0.0)  # treat the 2 s clip as "long"
    assert _codes(media.sample_video_frames(path, 4)) == media.frame_indices(16, 4).tolist()


def test_audio_from_container_wav_and_blob(tmp_path: Path):
    video = write_mp4(tmp_path / "v.mp4", audio_seconds=1.0, rate=16000)
    wave = media.load_audio(video, 16000)
    assert wave.dtype == np.float32 and len(wave) == 16000  # AAC priming/padding trimmed to the stream duration
    assert len(media.load_audio(video, 48000)) == 48000
    stereo = write_wav(tmp_path / "s.wav", seconds=2.0, rate=44100, channels=2)
    mono = media.load_audio(stereo, 16000)
    assert len(mono) == 32000 and np.abs(mono).max() > 0.1
    blob = BlobRef("row[0]/s.wav", read=stereo.read_bytes)
    np.testing.assert_array_equal(media.load_audio(blob, 16000), mono)


def test_silent_video_gives_empty_audio_and_one_window_of_silence(tmp_path: Path):
    silent = write_mp4(tmp_path / "silent.mp4", audio_seconds=None)
    wave = media.load_audio(silent, 16000)
    assert wave.size == 0
    windows = media.audio_windows(wave, 100)
    assert len(windows) == 1 and not windows[0].any()


def test_audio_windows_are_consecutive_and_cover_the_clip():
    wave = np.arange(25, dtype=np.float32)
    assert [w.tolist()[0] for w in media.audio_windows(wave, 10)] == [0, 10, 20]  # tail of 5 >= half a window kept
    assert [len(w) for w in media.audio_windows(wave[:23], 10)] == [10, 10]  # tail of 3 dropped
    assert [len(w) for w in media.audio_windows(wave[:4], 10)] == [4]  # a short clip is its own window


def test_load_image_composites_alpha_on_white(tmp_path: Path):
    from PIL import Image

    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    rgba.save(tmp_path / "stamp.png")
    img = media.load_image(tmp_path / "stamp.png")
    assert img.mode == "RGB" and img.getpixel((0, 0)) == (0, 0, 255) and img.getpixel((1, 1)) == (255, 255, 255)


@pytest.mark.parametrize("mode,ink,key", [("RGB", (0, 0, 255), (0, 0, 1)), ("L", 0, 1), ("P", 2, 1)])
def test_load_image_composites_a_transparent_colour_on_white(tmp_path: Path, mode, ink, key):
    """A PNG without an alpha channel but with a transparent colour (tRNS chunk): that colour becomes white."""
    from PIL import Image

    img = Image.new(mode, (4, 4), key)
    if mode == "P":
        img.putpalette([0, 0, 0, 10, 10, 10, 0, 0, 255])
    img.putpixel((0, 0), ink)
    img.save(tmp_path / "stamp.png", transparency=key)
    out = media.load_image(tmp_path / "stamp.png")
    assert out.getpixel((1, 1)) == (255, 255, 255) and out.getpixel((0, 0)) != (255, 255, 255)


def test_undecodable_media_name_the_file(tmp_path: Path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(BenchError, match="broken.mp4"):
        media.sample_video_frames(bad, 4)
    with pytest.raises(BenchError, match="broken.png"):
        media.load_image(bad.rename(tmp_path / "broken.png"))
