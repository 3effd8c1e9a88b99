"""Audio dataset adapters (AudioCaps, Clotho), Hugging Face datasets, pre-extracted features; end-to-end runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from fixtures_data import (
    SMALL_TRAIN,
    caption,
    make_audiocaps,
    make_clotho,
    make_msrvtt,
    tiny_models_dir,
    write_wav,
)

from pmrl_bench import task as task_module
from pmrl_bench.cli import main
from pmrl_bench.data.items import BlobRef, ids_sha256
from pmrl_bench.errors import BenchError
from pmrl_bench.registry import get_adapter


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("audio_data")
    return {"audiocaps": make_audiocaps(root / "audiocaps"), "clothov2": make_clotho(root / "clothov2")}


def _clap(models: dict[str, Path]) -> list[str]:
    return ["--set", f"encoders.text.model={models['clap']}", "--set", f"encoders.audio.model={models['clap']}"]


def test_audiocaps_groups_rows_into_clips_and_tries_name_templates(data):
    test = get_adapter("audiocaps")(split="test", data_dir=str(data["audiocaps"]))
    assert [i.item_id for i in test.items] == ["DDDDDDDDDDD_10", "EEEEEEEEEEE_40", "FFFFFFFFFFF_50"]
    assert [len(i.texts) for i in test.items] == [5, 5, 5] and test.items[0].texts[0] == caption(0)
    assert test.missing == {"audio": ("FFFFFFFFFFF_50",)}
    train = get_adapter("audiocaps")(split="train", data_dir=str(data["audiocaps"]))
    assert train.items[1].media["audio"].name == "YBBB-BBB_BBB.wav"  # the Y<youtube_id> template
    assert train.items[0].fields == {"youtube_id": "AAAAAAAAAAA", "start_time": 30.0, "audiocap_ids": ["1"]}


def test_clotho_file_names_with_spaces_and_latin1_metadata(data):
    dev = get_adapter("clotho")(split="development", data_dir=str(data["clothov2"]))
    assert [i.item_id for i in dev.items] == ["Forest birds 1.wav", "rain, on roof.wav"]
    assert len(dev.items[1].texts) == 5 and dev.items[0].fields["keywords"] == "birds;café"
    test = get_adapter("clotho")(split="test", data_dir=str(data["clothov2"]))
    assert test.split == "test" and test.missing == {"audio": ("gone file.wav",)}
    with pytest.raises(BenchError, match="unknown argument for adapter 'clotho' 'audio_dirs'"):
        get_adapter("clotho")(split="test", data_dir=str(data["clothov2"]), audio_dirs="x")


@pytest.mark.parametrize("task", ["audiocaps", "clothov2"])
def test_end_to_end_run(task, data, tmp_path, tmp_path_factory):
    results = tmp_path / "results"
    assert main(["run", "--method", "pmrl", "--task", task, "--results-dir", str(results), "--set",
                 f"data_dir={data[task]}", "--set", f"cache_dir={tmp_path / 'cache'}",
                 *_clap(tiny_models_dir(tmp_path_factory)), *SMALL_TRAIN]) == 0
    (path,) = results.rglob("*.json")
    record = json.loads(path.read_text())
    test = record["protocol"]["test"]
    assert record["status"] == "ok" and test["n_items"] == 2 and test["n_missing"] == 1
    assert record["protocol"]["t2a"]["n_queries"] == 10 and test["caption_policy"] == "all"
    assert test["encoders"]["audio"]["family"] == "clap_audio"
    val = record["protocol"]["val"]  # the dataset's own validation split, evaluated like test (5 captions)
    assert val["n_items"] == 1 and val["n_queries"] == {"t2a": 5} and len(record["train_curve"]) == 1


def _write_hf_parquet(directory: Path, wavs: dict[str, Path]) -> None:
    """A parquet data file with an audio struct column (bytes, path), built as an Arrow table (no torchcodec)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [(yt, caption(10 * i + k)) for i, yt in enumerate(["AAA", "BBB", "CCC"]) for k in range(2)]
    audio = [{"bytes": wavs[yt].read_bytes(), "path": f"{yt}.wav"} if yt in wavs else None for yt, _ in rows]
    table = pa.table({"youtube_id": [r[0] for r in rows], "caption": [r[1] for r in rows],
                      "audio": pa.array(audio, pa.struct([("bytes", pa.binary()), ("path", pa.string())]))})
    directory.mkdir(parents=True)
    pq.write_table(table, directory / "test-00000-of-00001.parquet")


@pytest.fixture
def hf_dirs(tmp_path: Path) -> dict[str, Path]:
    wavs = {yt: write_wav(tmp_path / "wav" / f"{yt}.wav", seconds=1.0 + i, seed=i) for i, yt in enumerate(["AAA", "BBB"])}
    _write_hf_parquet(tmp_path / "parquet" / "data", wavs)
    import datasets

    ds = datasets.load_dataset(str(tmp_path / "parquet"), split="test")
    ds = ds.cast_column("audio", datasets.Audio(decode=False))
    datasets.DatasetDict({"test": ds, "train": ds, "val": ds}).save_to_disk(str(tmp_path / "saved"))
    return {"parquet": tmp_path / "parquet", "saved": tmp_path / "saved", "wav": tmp_path / "wav"}


@pytest.mark.parametrize("kind", ["parquet", "saved"])
def test_hf_dataset_columns_read_without_decoding(kind, hf_dirs):
    items = get_adapter("hf")(split="test", dataset="someone/audiocaps-mirror", data_dir=str(hf_dirs[kind]),
                              dataset_name="audiocaps", id_column="youtube_id", text_columns=["caption"],
                              media_columns={"audio": "audio"})
    assert items.dataset == "audiocaps" and [i.item_id for i in items.items] == ["AAA", "BBB", "CCC"]
    assert items.items[0].texts == (caption(0), caption(1)) and items.missing == {"audio": ("CCC",)}
    ref = items.items[1].media["audio"]
    assert isinstance(ref, BlobRef) and ref.read() == (hf_dirs["wav"] / "BBB.wav").read_bytes()
    assert items.annotation_identity["fingerprint"]


def test_hf_adapter_end_to_end_and_offline_hub_error(hf_dirs, tmp_path, tmp_path_factory, monkeypatch, capsys):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "audiocaps-hf.yaml").write_text(
        (Path(task_module.TASKS_DIR) / "audiocaps.yaml").read_text()
        .replace("name: audiocaps", "name: audiocaps-hf").replace("adapter: audiocaps", "adapter: hf")
        + "adapter_args: {dataset: someone/audiocaps-mirror, dataset_name: audiocaps, id_column: youtube_id, "
          "text_columns: [caption], media_columns: {audio: audio}}\n")
    monkeypatch.setattr(task_module, "TASKS_DIR", tasks)
    task_module.load_task.cache_clear()
    results = tmp_path / "results"
    common = ["run", "--method", "clip", "--task", "audiocaps-hf", "--set", f"cache_dir={tmp_path / 'cache'}",
              *_clap(tiny_models_dir(tmp_path_factory)), *SMALL_TRAIN]
    assert main([*common, "--results-dir", str(results), "--set", f"data_dir={hf_dirs['saved']}"]) == 0
    capsys.readouterr()
    (path,) = results.rglob("*.json")
    test = json.loads(path.read_text())["protocol"]["test"]
    assert test["n_items"] == 2 and test["missing_first_ids"] == ["CCC"] and test["kept_ids_sha256"] == ids_sha256(["AAA", "BBB"])
    assert json.loads(path.read_text())["protocol"]["val"]["n_items"] == 2  # the dataset's own val split
    assert main([*common, "--results-dir", str(tmp_path / "other")]) == 2  # the hub id is not cached and HF_DATASETS_OFFLINE=1
    err = capsys.readouterr().err.strip()
    assert "hf: cannot load dataset 'someone/audiocaps-mirror'" in err and "--set data_dir=" in err and "\n" not in err
    task_module.load_task.cache_clear()


def test_features_adapter_reads_the_cache_layout_and_plain_files(tmp_path, tmp_path_factory, monkeypatch):
    from fixtures_data import encoder_overrides

    models = tiny_models_dir(tmp_path_factory)
    msrvtt = make_msrvtt(tmp_path / "msrvtt")
    cache = tmp_path / "cache"
    sets = ["--set", f"data_dir={msrvtt}", "--set", f"cache_dir={cache}", *encoder_overrides(models)]
    assert main(["data", "extract", "--task", "msrvtt", *sets]) == 0
    feats = get_adapter("features")(split="test_1k", modalities=["text", "vision", "audio"], features_root=str(cache),
                                    dataset="msrvtt")
    assert feats.item_ids == ("video4", "video5") and feats.modalities["text"].row_ids == ("video4#0", "video5#0")
    assert feats.info["kept_ids_sha256"] == ids_sha256(["video4", "video5"])

    from safetensors.torch import save_file

    save_file({"embeddings": torch.randn(3, 4)}, str(tmp_path / "v.safetensors"),
              metadata={"ids": json.dumps(["a", "b", "c"])})
    import numpy as np

    np.save(tmp_path / "t.npy", np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32))
    (tmp_path / "t.ids.json").write_text(json.dumps(["a#0", "a#1", "b#0", "d#0"]))
    files = {"test": {"vision": str(tmp_path / "v.safetensors"), "text": {"path": str(tmp_path / "t.npy"), "encoder": "mine"}}}
    out = get_adapter("features")(split="test", modalities=["text", "vision"], files=files, caption_policy="first")
    assert out.item_ids == ("a", "b", "c") and out.modalities["text"].row_ids == ("a#0", "b#0")
    assert out.modalities["text"].item_index.tolist() == [0, 1] and out.info["encoders"]["text"] == {"encoder": "mine"}
    out_all = get_adapter("features")(split="test", modalities=["text", "vision"], files=files)
    assert out_all.modalities["text"].row_ids == ("a#0", "a#1", "b#0")  # d has no vision row: its text is dropped
    assert out_all.info["n_missing"] == 1 and out_all.info["missing_first_ids"] == ["d"]  # ... and reported
    with pytest.raises(BenchError, match="one pre-extracted paragraph row per item"):
        get_adapter("features")(split="test", modalities=["text", "vision"], files=files, caption_policy="paragraph")
