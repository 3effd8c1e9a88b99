"""Tiny media and model fixtures for the data tests, written by the tests themselves (nothing is shipped).

Media: MP4s (H.264 + AAC) whose frame i is filled with the grey level `frame_code(i)` so sampling
tests can tell which frames were taken; WAVs with soundfile. Models: tiny randomly initialised
transformers encoders of every family, saved with save_pretrained into a directory (docs/datasets.md 5).
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np

FPS = 8
SIZE = 32


def frame_code(i: int) -> int:
    """Grey level written into frame i (codes 15 apart, so decoding noise never confuses them)."""
    return 8 + 15 * i


def write_mp4(path: Path, n_frames: int = 16, audio_seconds: float | None = 1.0, rate: int = 16000,
              container_format: str | None = None, codec: str = "libx264", audio_codec: str = "aac",
              size: int = SIZE, seed: int = 0) -> Path:
    """A short video (frame i filled with frame_code(i)) with a sine+noise audio track unless audio_seconds is None."""
    import av

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=container_format) as out:
        vs = out.add_stream(codec, rate=FPS)
        vs.width = vs.height = size
        vs.pix_fmt = "yuv420p"
        if codec == "libx264":
            vs.options = {"crf": "10", "preset": "ultrafast"}
        streams = [vs]
        if audio_seconds is not None:
            aus = out.add_stream(audio_codec, rate=rate if audio_codec != "libopus" else 48000)
            aus.layout = "mono"
            streams.append(aus)
        for i in range(n_frames):
            img = np.full((size, size, 3), frame_code(i), np.uint8)
            if seed:  # a seed-specific coloured corner, so different videos have different content
                img[: size // 2, : size // 2] = ((37 * seed) % 256, (91 * seed) % 256, (53 * seed) % 256)
            for packet in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if audio_seconds is not None:
            arate = aus.rate
            t = np.arange(int(audio_seconds * arate)) / arate
            wave = (0.3 * np.sin(2 * np.pi * (220 + 40 * seed) * t) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(wave[None, :], format="flt", layout="mono")
            frame.sample_rate = arate
            frame.time_base = Fraction(1, arate)
            frame.pts = 0
            for packet in aus.encode(frame):
                out.mux(packet)
            for packet in aus.encode():
                out.mux(packet)
    return path


def write_wav(path: Path, seconds: float = 1.0, rate: int = 16000, seed: int = 0, channels: int = 1) -> Path:
    """A sine+noise WAV (PCM_16)."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t) + 0.02 * rng.standard_normal(t.size)
    data = np.stack([wave] * channels, axis=1) if channels > 1 else wave
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data.astype(np.float32), rate, subtype="PCM_16")
    return path


WORDS = ("a man woman dog cat is are playing singing running talking music car video people the in on with and "
         "of to plays sings runs talks cooking food water ball kid guitar piano bird street room sound noise").split()


def _vocab_tokenizer(directory: Path, model_max_length: int = 77, bos: bool = True) -> None:
    """A WordLevel tokenizer (lower-cased, whitespace split) saved with save_pretrained."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    vocab = {w: i for i, w in enumerate(specials + list(WORDS))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if bos:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", model_max_length=model_max_length)
    fast.save_pretrained(directory)


def _bert_tokenizer(directory: Path) -> None:
    from transformers import BertTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n", encoding="utf-8")
    BertTokenizer(str(vocab), model_max_length=64).save_pretrained(directory)


TEXT = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=32, patch_size=8)


def build_tiny_models(root: Path) -> dict[str, Path]:
    """Save one tiny random model of every family under `root`; returns family -> model directory."""
    import torch
    import transformers
    from transformers import (
        ASTConfig,
        ASTFeatureExtractor,
        ASTModel,
        BertConfig,
        BertModel,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        CLIPConfig,
        CLIPImageProcessorPil,
        CLIPModel,
        SiglipConfig,
        SiglipImageProcessorPil,
        SiglipModel,
        XCLIPConfig,
        XCLIPModel,
    )

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    torch.manual_seed(0)
    out = {}
    text = dict(TEXT, max_position_embeddings=77, bos_token_id=0, eos_token_id=2, pad_token_id=1)
    clip_proc = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})

    d = root / "clip"
    CLIPModel(CLIPConfig(text_config=text, vision_config=VISION, projection_dim=16)).save_pretrained(d)
    clip_proc.save_pretrained(d)
    _vocab_tokenizer(d)
    out["clip"] = d

    d = root / "siglip"
    SiglipModel(SiglipConfig(text_config=dict(TEXT, max_position_embeddings=16), vision_config=VISION)).save_pretrained(d)
    SiglipImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(d)
    _vocab_tokenizer(d, model_max_length=16, bos=False)
    out["siglip"] = d

    d = root / "xclip"
    XCLIPModel(XCLIPConfig(
        text_config=text, projection_dim=16, prompt_layers=1, prompt_attention_heads=2, prompt_num_attention_heads=2,
        vision_config=dict(VISION, num_frames=4, mit_hidden_size=16, mit_intermediate_size=32,
                           mit_num_hidden_layers=1, mit_num_attention_heads=2))).save_pretrained(d)
    clip_proc.save_pretrained(d)
    _vocab_tokenizer(d)
    out["xclip"] = d

    d = root / "clap"
    ClapModel(ClapConfig(
        text_config=dict(TEXT, max_position_embeddings=80, projection_hidden_size=16, pad_token_id=1),
        audio_config=dict(spec_size=64, num_mel_bins=16, window_size=4, depths=[1, 1], num_attention_heads=[2, 2],
                          hidden_size=32, patch_embeds_hidden_size=16, projection_hidden_size=16, enable_fusion=False,
                          patch_stride=[4, 4], patch_size=4),
        projection_dim=16)).save_pretrained(d)
    ClapFeatureExtractor(feature_size=16, sampling_rate=16000, hop_length=160, max_length_s=1, fft_window_size=400,
                         frequency_min=50, frequency_max=8000,
                         truncation="rand_trunc", padding="repeatpad").save_pretrained(d)
    _vocab_tokenizer(d, model_max_length=64)
    out["clap"] = d

    d = root / "ast"
    ASTModel(ASTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                       num_mel_bins=16, max_length=64, patch_size=16, frequency_stride=10, time_stride=10)).save_pretrained(d)
    ASTFeatureExtractor(num_mel_bins=16, max_length=64).save_pretrained(d)
    out["ast"] = d

    d = root / "bert"
    BertModel(BertConfig(**TEXT, max_position_embeddings=64)).save_pretrained(d)
    _bert_tokenizer(d)
    out["bert"] = d
    (root / "models.json").write_text(json.dumps({k: str(v) for k, v in out.items()}))
    return out


# ---------------------------------------------------------------- dataset fixtures in the public formats


def caption(seed: int, n_words: int = 6) -> str:
    """A caption made of words the tiny tokenizers know."""
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(WORDS, n_words))


def tiny_models_dir(tmp_path_factory) -> dict[str, Path]:  # noqa: ANN001 - pytest's TempPathFactory
    """Build the tiny models once per test session (idempotent across test modules)."""
    root = tmp_path_factory.getbasetemp() / "tiny_models"
    index = root / "models.json"
    if not index.is_file():
        build_tiny_models(root)
    return {k: Path(v) for k, v in json.loads(index.read_text()).items()}


def make_msrvtt(root: Path) -> Path:
    """CLIP4Clip packaging: 4 train videos (3 captions), 3 test rows (video6 has no file), video2 silent."""
    import csv

    videos = [f"video{i}" for i in range(7)]
    data = {"info": {"year": "2016"},
            "videos": [{"id": i, "video_id": v, "category": i % 3, "url": f"https://youtu.be/{v}", "start time": 1.0,
                        "end time": 11.0, "split": "train" if i < 4 else "test"} for i, v in enumerate(videos)],
            "sentences": [{"sen_id": 3 * i + k, "video_id": v, "caption": caption(100 * i + k)}
                          for i, v in enumerate(videos) for k in range(3)]}
    (root / "msrvtt_data").mkdir(parents=True)
    (root / "msrvtt_data" / "MSRVTT_data.json").write_text(json.dumps(data))
    with open(root / "msrvtt_data" / "MSRVTT_train.9k.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["video_id"])
        w.writerows([[v] for v in videos[:4]])
    with open(root / "msrvtt_data" / "MSRVTT_JSFUSION_test.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["key", "vid_key", "video_id", "sentence"])
        w.writerows([[f"ret{k}", f"msr{v[5:]}", v, caption(100 * int(v[5:]))] for k, v in enumerate(videos[4:])])
    for i, v in enumerate(videos[:6]):
        write_mp4(root / "videos" / "all" / f"{v}.mp4", audio_seconds=None if i == 2 else 1.0, seed=i)
    return root


def make_didemo(root: Path) -> Path:
    """LocalizingMoments files; videos stored as transcoded <stem>.mp4 while the annotation names .mov/.avi."""
    names = ["1234@N00_111_aaa.mov", "5678@N01_222_bbb.avi", "9012@N02_333_ccc.mp4", "3456@N03_444_ddd.mov",
             "7890@N04_555_eee.mov"]
    for split, chosen in (("train", names[:2]), ("test", names[2:4]), ("val", names[4:])):
        moments = [{"annotation_id": 10 * i + k, "description": caption(10 * i + k), "video": v,
                    "times": [[k, k], [k, k + 1]], "num_segments": 6, "dl_link": "https://flickr.com/x"}
                   for i, v in enumerate(chosen) for k in range(2)]
        root.mkdir(parents=True, exist_ok=True)
        (root / f"{split}_data.json").write_text(json.dumps(moments))
        (root / f"{split}_list.txt").write_text("\n".join(chosen) + "\n")
    for i, v in enumerate([*names[:3], names[4]]):  # ddd missing
        write_mp4(root / "videos" / (Path(v).stem + ".mp4"), seed=i)
    return root


def make_activitynet(root: Path) -> Path:
    """train.json / val_1.json keyed by v_<id>; media without the prefix, one with it, one missing."""
    ids = ["v_AAAAAAAAAAA", "v_BBBBBBBBBBB", "v_CCCCCCCCCCC", "v_DDDDDDDDDDD", "v_EEEEEEEEEEE", "v_FFFFFFFFFFF"]
    for split, chosen in (("train", ids[:2]), ("val_1", ids[2:5]), ("val_2", ids[5:])):
        ann = {v: {"duration": 2.0, "timestamps": [[0.0, 1.0], [1.0, 2.0]],
                   "sentences": [" " + caption(10 * i) + ". ", caption(10 * i + 1) + "."]} for i, v in enumerate(chosen)}
        root.mkdir(parents=True, exist_ok=True)
        (root / f"{split}.json").write_text(json.dumps(ann))
    write_mp4(root / "videos" / "AAAAAAAAAAA.mp4", seed=0)
    write_mp4(root / "videos" / "v_BBBBBBBBBBB.mp4", seed=1)
    write_mp4(root / "videos" / "CCCCCCCCCCC.mp4", seed=2)
    write_mp4(root / "videos" / "DDDDDDDDDDD.mkv", container_format="matroska", seed=3)
    write_mp4(root / "videos" / "FFFFFFFFFFF.mp4", seed=5)
    return root


def make_vatex(root: Path) -> Path:
    """Training/validation JSON with videoID/enCap/chCap, an HGR test id list, videos <videoID>.mp4."""
    def clip(k: int) -> str:
        return f"yt{k:09d}_{10 * k:06d}_{10 * k + 10:06d}"

    train = [{"videoID": clip(k), "enCap": [caption(20 * k + j) for j in range(3)], "chCap": ["中文"] * 3} for k in range(3)]
    val = [{"videoID": clip(k), "enCap": [caption(20 * k + j) for j in range(3)], "chCap": ["中文"] * 3} for k in range(3, 7)]
    root.mkdir(parents=True, exist_ok=True)
    (root / "vatex_training_v1.0.json").write_text(json.dumps(train))
    (root / "vatex_validation_v1.0.json").write_text(json.dumps(val, ensure_ascii=False))
    (root / "hgr_test_ids.txt").write_text("\n".join(clip(k) for k in (3, 4, 5)) + "\n")
    for k in range(7):  # 6: the validation clip outside the HGR test list
        write_mp4(root / "videos" / f"{clip(k)}.mp4", seed=k)
    return root


def make_audiocaps(root: Path) -> Path:
    """train.csv (1 caption per clip), test.csv (5 per clip); clips named by two templates, one missing."""
    import csv

    clips = [("AAAAAAAAAAA", "30"), ("BBB-BBB_BBB", "0"), ("CCCCCCCCCCC", "120"), ("DDDDDDDDDDD", "10"),
             ("EEEEEEEEEEE", "40"), ("FFFFFFFFFFF", "50"), ("GGGGGGGGGGG", "60")]
    root.mkdir(parents=True, exist_ok=True)
    for split, chosen, per in (("train", clips[:3], 1), ("test", clips[3:6], 5), ("val", clips[6:], 5)):
        with open(root / f"{split}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["audiocap_id", "youtube_id", "start_time", "caption"])
            n = 0
            for i, (yt, start) in enumerate(chosen):
                for k in range(per):
                    n += 1
                    w.writerow([1000 * i + n, yt, start, caption(30 * i + k)])
    for i, (yt, start) in enumerate(clips):
        if yt == "FFFFFFFFFFF":
            continue  # missing
        name = f"Y{yt}.wav" if i == 1 else f"{yt}_{start}.wav"
        write_wav(root / "audio" / name, seconds=1.5 + i, rate=44100 if i % 2 else 32000, seed=i)
    return root


def make_clotho(root: Path) -> Path:
    """Caption CSVs (caption_1..5) and metadata; file names with spaces and a comma; one missing file."""
    import csv

    splits = {"development": ["Forest birds 1.wav", "rain, on roof.wav"],
              "evaluation": ["street noise at night.wav", "kitchen_cooking.wav", "gone file.wav"],
              "validation": ["wind in trees.wav"]}
    root.mkdir(parents=True, exist_ok=True)
    for split, names in splits.items():
        with open(root / f"clotho_captions_{split}.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["file_name", *[f"caption_{k}" for k in range(1, 6)]])
            for i, n in enumerate(names):
                w.writerow([n, *[caption(50 * i + k) for k in range(5)]])
        with open(root / f"clotho_metadata_{split}.csv", "w", newline="", encoding="latin-1") as fh:
            w = csv.writer(fh)
            w.writerow(["file_name", "keywords", "sound_id", "sound_link", "start_end_samples", "manufacturer", "license"])
            for i, n in enumerate(names):
                w.writerow([n, "birds;café", 1000 + i, "https://freesound.org/x", "[0, 1]", "someone",
                            "http://creativecommons.org/publicdomain/zero/1.0/"])
        for i, n in enumerate(names[:2]):
            write_wav(root / split / n, seconds=1.2 + i, rate=44100, seed=10 + i, channels=2 if i else 1)
    return root


def make_vast_msrvtt(root: Path, msrvtt_root: Path) -> Path:
    """VAST-family descs_ret_test.json for the MSR-VTT test videos (desc as a list and as a string)."""
    root.mkdir(parents=True, exist_ok=True)
    records = [{"video_id": "video4", "desc": [caption(400), "another"]}, {"video_id": "video5", "desc": caption(500)},
               {"video_id": "video6", "desc": caption(600)}]
    (root / "descs_ret_test.json").write_text(json.dumps(records))
    (root / "videos").symlink_to(msrvtt_root / "videos" / "all")
    for v in ("video4", "video5"):
        write_wav(root / "audios" / f"{v}.wav", seconds=1.0, seed=int(v[5:]))
    return root


def encoder_overrides(models: dict[str, Path], text: str = "clip", frames: int = 4) -> list[str]:
    """--set arguments that point a video task's encoders at the tiny models."""
    text_family = {"clip": "clip_text", "clap": "clap_text", "bert": "bert_mean"}[text]
    return ["--set", f"encoders.text.family={text_family}", "--set", f"encoders.text.model={models[text]}",
            "--set", f"encoders.vision.model={models['clip']}", "--set", f"encoders.vision.frames={frames}",
            "--set", f"encoders.audio.model={models['clap']}"]


SMALL_TRAIN = ["--set", "epochs=1", "--set", "batch_size=4", "--set", "embed_dim=8", "--set", "head_hidden=16"]
