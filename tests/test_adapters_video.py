"""Video dataset adapters on tiny fixtures in their public formats, and end-to-end runs through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_data import (
    SMALL_TRAIN,
    encoder_overrides,
    make_activitynet,
    make_didemo,
    make_msrvtt,
    make_vast_msrvtt,
    make_vatex,
    tiny_models_dir,
)

from pmrl_bench.cli import main
from pmrl_bench.data.items import ids_sha256
from pmrl_bench.errors import BenchError
from pmrl_bench.registry import get_adapter


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("video_data")
    msrvtt = make_msrvtt(root / "msrvtt")
    return {"msrvtt": msrvtt, "didemo": make_didemo(root / "didemo"), "activitynet": make_activitynet(root / "activitynet"),
            "vatex": make_vatex(root / "vatex"), "vast": make_vast_msrvtt(root / "vast_msrvtt", msrvtt)}


def test_msrvtt_splits_captions_and_missing_media(data):
    adapter = get_adapter("msrvtt")
    train = adapter(split="train_9k", data_dir=str(data["msrvtt"]))
    assert [i.item_id for i in train.items] == ["video0", "video1", "video2", "video3"]
    assert len(train.items[0].texts) == 3 and train.items[0].fields["category"] == 0
    assert train.items[2].media["audio"] == train.items[2].media["vision"]  # audio = the video's own track
    assert set(train.annotation_identity) == {"MSRVTT_data.json", "MSRVTT_train.9k.csv"}
    test = adapter(split="test_1k", data_dir=str(data["msrvtt"]))
    assert [len(i.texts) for i in test.items] == [1, 1, 1]
    assert test.missing == {"vision": ("video6",), "audio": ("video6",)}
    kept, dropped = test.usable(["text", "vision", "audio"])
    assert [i.item_id for i in kept] == ["video4", "video5"] and dropped == ("video6",)
    official = adapter(split="test", data_dir=str(data["msrvtt"]))
    assert [i.item_id for i in official.items] == ["video4", "video5", "video6"]
    with pytest.raises(BenchError, match="did you mean 'test_1k'"):
        adapter(split="test_1ka", data_dir=str(data["msrvtt"]))


def test_vast_json_agrees_with_the_original_files_on_ids(data):
    vast = get_adapter("vast")(split="test", dataset="msrvtt", data_dir=str(data["vast"]))
    original = get_adapter("msrvtt")(split="test_1k", data_dir=str(data["msrvtt"]))
    assert [i.item_id for i in vast.items] == [i.item_id for i in original.items]
    assert vast.items[0].texts == (original.items[0].texts[0], "another") and len(vast.items[1].texts) == 1
    assert vast.items[0].media["audio"].suffix == ".wav" and vast.missing == {"vision": ("video6",), "audio": ("video6",)}


def test_didemo_matches_media_by_stem_and_keeps_description_order(data):
    test = get_adapter("didemo")(split="test", data_dir=str(data["didemo"]))
    assert [i.item_id for i in test.items] == ["9012@N02_333_ccc", "3456@N03_444_ddd"]
    assert test.items[0].media["vision"].name == "9012@N02_333_ccc.mp4"
    assert test.missing["vision"] == ("3456@N03_444_ddd",)
    train = get_adapter("didemo")(split="train", data_dir=str(data["didemo"]))
    moments = json.loads((data["didemo"] / "train_data.json").read_text())
    assert train.items[1].texts == tuple(m["description"] for m in moments if m["video"] == "5678@N01_222_bbb.avi")
    assert train.items[1].media["vision"].name == "5678@N01_222_bbb.mp4"  # .avi in the annotation, .mp4 on disk


def test_activitynet_finds_videos_with_and_without_the_prefix(data):
    train = get_adapter("activitynet")(split="train", data_dir=str(data["activitynet"]))
    assert [i.media["vision"].name for i in train.items] == ["AAAAAAAAAAA.mp4", "v_BBBBBBBBBBB.mp4"]
    test = get_adapter("activitynet")(split="val_1", data_dir=str(data["activitynet"]))
    assert test.items[1].media["vision"].suffix == ".mkv" and test.missing["vision"] == ("v_EEEEEEEEEEE",)
    assert test.items[0].texts[0] == test.items[0].texts[0].strip()


def test_vatex_hgr_split_comes_from_the_id_list(data):
    test = get_adapter("vatex")(split="hgr_test", data_dir=str(data["vatex"]))
    assert [i.item_id for i in test.items] == ["yt000000003_000030_000040", "yt000000004_000040_000050",
                                               "yt000000005_000050_000060"]
    assert len(test.items[0].texts) == 3 and test.items[0].fields["n_zh_captions"] == 3
    assert "hgr_test_ids.txt" in test.annotation_identity


@pytest.mark.parametrize(("task", "val_ids"), [
    ("didemo", ["7890@N04_555_eee"]),
    ("activitynet", ["v_FFFFFFFFFFF"]),
    ("vatex", ["yt000000006_000060_000070"]),  # the validation file without the HGR test ids
])
def test_validation_split_is_the_datasets_own(task, val_ids, data):
    from pmrl_bench.config import resolve_config
    from pmrl_bench.data.load import read_split
    from pmrl_bench.task import load_task

    spec = load_task(task)
    config = resolve_config(spec, "clip", [("data_dir", str(data[task]))])
    assert [i.item_id for i in read_split(spec, config, "val").items] == val_ids


def test_vatex_validation_needs_the_hgr_test_list(data, tmp_path):
    import shutil

    shutil.copytree(data["vatex"], tmp_path / "vatex", ignore=shutil.ignore_patterns("videos"))
    (tmp_path / "vatex" / "hgr_test_ids.txt").unlink()
    with pytest.raises(BenchError, match="hgr_test_ids"):
        get_adapter("vatex")(split="val_minus_hgr_test", data_dir=str(tmp_path / "vatex"))


def _run(tmp: Path, task: str, data_dir: Path, models, *extra: str) -> dict:
    results = tmp / f"results_{task}"
    args = ["run", "--method", "clip", "--task", task, "--results-dir", str(results), "--set", f"data_dir={data_dir}",
            "--set", f"cache_dir={tmp / 'cache'}", *encoder_overrides(models), *SMALL_TRAIN, *extra]
    assert main(args) == 0
    (path,) = results.rglob("*.json")
    return json.loads(path.read_text())


@pytest.mark.parametrize(("task", "test_ids", "policy", "n_queries"), [
    ("didemo", ["9012@N02_333_ccc"], "paragraph", 1),
    ("activitynet", ["v_CCCCCCCCCCC", "v_DDDDDDDDDDD"], "paragraph", 2),
    ("vatex", ["yt000000003_000030_000040", "yt000000004_000040_000050", "yt000000005_000050_000060"], "all", 9),
])
def test_end_to_end_run(task, test_ids, policy, n_queries, data, tmp_path, tmp_path_factory):
    record = _run(tmp_path, task, data[task], tiny_models_dir(tmp_path_factory))
    assert record["status"] == "ok" and 0 <= record["metrics"]["t2va/R@1"] <= 100
    test = record["protocol"]["test"]
    assert test["caption_policy"] == policy and test["n_items"] == len(test_ids)
    assert test["kept_ids_sha256"] == ids_sha256(test_ids)
    assert record["protocol"]["t2va"]["n_queries"] == n_queries
    assert set(test["encoders"]) == {"text", "vision", "audio"} and set(test["cache_keys"]) == {"text", "vision", "audio"}
    assert {m: len(h) for m, h in test["features_sha256"].items()} == {"text": 64, "vision": 64, "audio": 64}
    assert record["protocol"]["val"]["n_items"] == 1 and record["selected_epoch"] == 1


def test_first_caption_policy_override_is_recorded(data, tmp_path, tmp_path_factory):
    record = _run(tmp_path, "vatex", data["vatex"], tiny_models_dir(tmp_path_factory), "--set", "data.caption_policy=first")
    assert record["protocol"]["test"]["caption_policy"] == "first" and record["protocol"]["t2va"]["n_queries"] == 3


def test_missing_data_fails_in_one_paragraph_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("PMRL_BENCH_DATA", raising=False)
    results = tmp_path / "results"
    assert main(["run", "--method", "clip", "--task", "msrvtt", "--results-dir", str(results)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: msrvtt: no data location given") and "PMRL_BENCH_DATA" in err and "\n" not in err
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PMRL_BENCH_DATA", str(tmp_path))
    assert main(["run", "--method", "clip", "--task", "msrvtt", "--results-dir", str(results),
                 "--set", f"data_dir={tmp_path / 'empty'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "MSRVTT_data.json or train_val_videodatainfo.json not found (looked in:" in err
    assert "Hugging Face dataset" in err and "--set data_dir=" in err and "\n" not in err
    assert not results.exists() or not list(results.rglob("*.json"))


def test_msrvtt_9k_list_with_the_original_release_files(tmp_path):
    """train_val_videodatainfo.json + test_videodatainfo.json + MSRVTT_train.9k.csv: every listed video has captions."""
    import csv

    from fixtures_data import caption, write_mp4

    vids = [f"video{i}" for i in range(4)]
    for name, chosen in (("train_val_videodatainfo.json", vids[:2]), ("test_videodatainfo.json", vids[2:])):
        (tmp_path / name).write_text(json.dumps({
            "info": {}, "videos": [{"id": int(v[5:]), "video_id": v, "category": 0, "split": "train"} for v in chosen],
            "sentences": [{"sen_id": 10 * int(v[5:]) + k, "video_id": v, "caption": caption(k)} for v in chosen for k in range(2)]}))
    with open(tmp_path / "MSRVTT_train.9k.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["video_id"], *[[v] for v in vids]])
    write_mp4(tmp_path / "videos" / "video0.mp4")
    train = get_adapter("msrvtt")(split="train_9k", data_dir=str(tmp_path))
    assert [len(i.texts) for i in train.items] == [2, 2, 2, 2]


def test_didemo_list_file_filter_is_reported(tmp_path, capsys):
    """Videos left out by {split}_list.txt (annotated but not listed, listed but not annotated) are said, not dropped silently."""
    from fixtures_data import make_didemo

    root = make_didemo(tmp_path / "didemo")
    (root / "test_list.txt").write_text("9012@N02_333_ccc.mp4\n0000@N09_999_zzz.mov\n")
    test = get_adapter("didemo")(split="test", data_dir=str(root))
    assert [i.item_id for i in test.items] == ["9012@N02_333_ccc"]
    err = capsys.readouterr().err
    assert "1 annotated videos not listed" in err and "3456@N03_444_ddd.mov" in err
    assert "1 listed videos without annotations" in err and "0000@N09_999_zzz.mov" in err
