"""QA and classification adapters (MSRVTT-QA, MSRVTT-MC, MUSIC-AVQA, VAST QA copies, ESC-50, UCF101) on tiny files
the tests write in each public layout, their bad-input errors, and end-to-end runs through the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from fixtures_data import (
    SMALL_TRAIN,
    caption,
    encoder_overrides,
    make_msrvtt,
    tiny_models_dir,
    write_mp4,
    write_wav,
)

from pmrl_bench.cli import main
from pmrl_bench.errors import BenchError
from pmrl_bench.registry import get_adapter

ESC_CLASSES = {0: "dog", 1: "chirping_birds", 2: "water_drops"}
UCF_CLASSES = ["ApplyEyeMakeup", "PlayingGuitar", "YoYo"]


def make_esc50(root: Path) -> Path:
    """meta/esc50.csv + audio/{FOLD}-{ID}-{TAKE}-{TARGET}.wav: 5 folds x 3 classes; clips 4 and 5 are fragments of
    one recording; clip 2 (fold 1) has no file."""
    rows = []
    for k in range(15):
        fold, target = k // 3 + 1, k % 3
        src = 100 + (k if k != 5 else 4)
        rows.append([f"{fold}-{src}-{'AB'[k == 5]}-{target}.wav", fold, target, ESC_CLASSES[target], k % 2 == 0,
                     src, "AB"[k == 5]])
    (root / "meta").mkdir(parents=True)
    with open(root / "meta" / "esc50.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        w.writerows(rows)
    for k, row in enumerate(rows):
        if k != 2:
            write_wav(root / "audio" / row[0], seconds=0.5, seed=k + 10 * row[2])
    return root


def make_ucf101(root: Path) -> Path:
    """ucfTrainTestlist/ (classInd, trainlist01 with indices, testlist01 without) and UCF-101/<Class>/*.avi."""
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(UCF_CLASSES, start=1)))
    train = [(c, g) for c in UCF_CLASSES for g in (8, 9, 10)]
    test = [(c, 1) for c in UCF_CLASSES]
    name = "{0}/v_{0}_g{1:02d}_c01.avi".format
    (lists / "trainlist01.txt").write_text("".join(f"{name(c, g)} {UCF_CLASSES.index(c) + 1}\n" for c, g in train))
    (lists / "testlist01.txt").write_text("".join(f"{name(c, g)}\n" for c, g in test))
    for k, (c, g) in enumerate(train + test):
        write_mp4(root / "UCF-101" / name(c, g), n_frames=4, audio_seconds=None, container_format="avi", codec="mpeg4",
                  seed=k + 1)
    return root


QA_ANSWERS = ["dog", "cat", "man"]


def make_msrvtt_qa(root: Path) -> Path:
    """The MSR-VTT fixture with video3 in the official validation split, plus MSRVTT-QA JSON and MSR_MC_test.csv."""
    make_msrvtt(root)
    data_file = root / "msrvtt_data" / "MSRVTT_data.json"
    data = json.loads(data_file.read_text())
    data["videos"][3]["split"] = "validate"
    data_file.write_text(json.dumps(data))
    qa = root / "msrvtt_qa"
    qa.mkdir()
    for split, vids in (("train", [0, 1, 2]), ("val", [3]), ("test", [4, 5, 6])):
        rows = [{"question": f"{'what who how'.split()[j]} is {caption(10 * v + j, 3)}?", "answer": QA_ANSWERS[(v + j) % 3],
                 "id": 100 * v + j, "video_id": v, "category_id": v % 3} for v in vids for j in range(3)]
        (qa / f"{split}_qa.json").write_text(json.dumps(rows))
    with open(root / "msrvtt_data" / "MSR_MC_test.csv", "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(["key", "vid_key", "video_id", "a1", "a2", "a3", "a4", "a5", "answer"])
        for k, v in enumerate([4, 5, 6]):
            w.writerow([f"mc{k}", f"msr{v}", f"video{v}", *[caption(700 + 10 * v + c) for c in range(5)], v % 4 + 1])
    return root


def make_music_avqa(root: Path) -> Path:
    """avqa-{train,val,test}.json with `anser`, JSON-string `type` and `templ_values`, `<Object>` templates; videos."""
    ids = [f"{k:08d}" for k in range(1, 7)]
    templates = [("Is the <Object> in the video always playing?", ["piano"], ["Audio-Visual", "Existential"], "yes"),
                 ("How many <Object> are sounding?", ["guitar"], ["Audio-Visual", "Counting"], "two"),
                 ("Is the <LR Instrument> louder than the <Object>?", ["left piano", "guitar"], ["Audio", "Comparative"],
                  "no")]
    json_dir = root / "json"
    json_dir.mkdir(parents=True)
    for split, chosen in (("train", ids[:3]), ("val", ids[3:4]), ("test", ids[4:])):
        rows = [{"video_id": v, "question_id": 10 * i + j, "type": json.dumps(t), "question_content": q,
                 "templ_values": json.dumps(vals), "anser": a if split == "train" or j else "three", "question_deleted": 0}
                for i, v in enumerate(chosen) for j, (q, vals, t, a) in enumerate(templates)]
        rows.append({**rows[0], "question_id": 999, "question_deleted": 1})
        (json_dir / f"avqa-{split}.json").write_text(json.dumps(rows))
    for k, v in enumerate(ids[:5]):  # 00000006 has no video
        write_mp4(root / "videos" / f"{v}.mp4", n_frames=4, seed=k + 1)
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("qa_cls_data")
    return {"esc50": make_esc50(root / "esc50"), "ucf101": make_ucf101(root / "ucf101"),
            "msrvtt": make_msrvtt_qa(root / "msrvtt"), "music-avqa": make_music_avqa(root / "music-avqa")}


# ---------------------------------------------------------------- adapters


def test_esc50_folds_groups_and_class_order(data):
    test = get_adapter("esc50")(split="test", fold=1, data_dir=str(data["esc50"]))
    train = get_adapter("esc50")(split="train", fold=1, data_dir=str(data["esc50"]))
    assert [i.item_id for i in test.items] == ["1-100-A-0", "1-101-A-1", "1-102-A-2"]
    assert test.missing == {"audio": ("1-102-A-2",)} and len(train.items) == 12 and not train.missing
    assert test.label_names == ("dog", "chirping birds", "water drops") and test.items[1].label == "chirping birds"
    assert test.items[1].texts == ("the sound of chirping birds",)
    assert train.items[1].fields["group"] == train.items[2].fields["group"] == "104"  # fragments of one recording
    assert train.items[1].fields["where"] == "esc50.csv row 6" and test.split == "test_fold1"
    other = get_adapter("esc50")(split="test", fold=2, data_dir=str(data["esc50"]))
    assert [i.item_id for i in other.items] == ["2-103-A-0", "2-104-A-1", "2-104-B-2"]
    assert other.annotation_identity["fold"] == "2"


def test_esc50_target_naming_two_classes_names_the_row(data, tmp_path):
    import shutil

    root = shutil.copytree(data["esc50"], tmp_path / "esc50")
    text = (root / "meta" / "esc50.csv").read_text().splitlines()
    text[4] = text[4].replace(",dog,", ",cat,")
    (root / "meta" / "esc50.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(BenchError, match=r"^esc50.csv row 5: target 0 is 'cat' here but 'dog' in esc50.csv row 2$"):
        get_adapter("esc50")(split="test", data_dir=str(root))


def test_ucf101_split_lists_class_names_and_groups(data):
    train = get_adapter("ucf101")(split="train", data_dir=str(data["ucf101"]))
    test = get_adapter("ucf101")(split="test", data_dir=str(data["ucf101"]))
    assert train.label_names == ("apply eye makeup", "playing guitar", "yo yo")
    assert [i.item_id for i in test.items] == [f"v_{c}_g01_c01" for c in UCF_CLASSES]
    assert test.items[2].label == "yo yo" and test.items[2].texts == ("a video of a person doing yo yo",)
    assert test.items[0].media["vision"].parent.name == "ApplyEyeMakeup" and not test.missing
    assert [i.fields["group"] for i in train.items[:3]] == ["ApplyEyeMakeup_g08", "ApplyEyeMakeup_g09", "ApplyEyeMakeup_g10"]


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t + "Surfing/v_Surfing_g01_c01.avi\n",
     r"^testlist01.txt row 4: label 'Surfing' is not in the class list \(3 classes: apply eye makeup, playing guitar, yo yo\)"),
])
def test_ucf101_label_not_in_the_class_list_names_file_and_row(edit, message, data, tmp_path):
    import shutil

    root = shutil.copytree(data["ucf101"], tmp_path / "ucf101")
    lst = root / "ucfTrainTestlist" / "testlist01.txt"
    lst.write_text(edit(lst.read_text()))
    with pytest.raises(BenchError, match=message):
        get_adapter("ucf101")(split="test", data_dir=str(root))


def test_ucf101_index_disagreeing_with_classind_names_the_row(data, tmp_path):
    import shutil

    root = shutil.copytree(data["ucf101"], tmp_path / "ucf101")
    lst = root / "ucfTrainTestlist" / "trainlist01.txt"
    lines = lst.read_text().splitlines()
    lines[1] = lines[1].replace(" 1", " 3")
    lst.write_text("\n".join(lines) + "\n")
    with pytest.raises(BenchError, match="^trainlist01.txt row 2: class index 3 disagrees with classInd.txt"):
        get_adapter("ucf101")(split="train", data_dir=str(root))


def test_msrvtt_qa_integer_video_ids_types_and_splits(data):
    test = get_adapter("msrvtt_qa")(split="test", data_dir=str(data["msrvtt"]))
    assert [i.item_id for i in test.items] == ["video4", "video5", "video6"] and test.missing["vision"] == ("video6",)
    q = test.questions[0]
    assert (q.qid, q.item_id, q.answer, q.qtype, q.where) == ("400", "video4", "cat", "what", "test_qa.json row 1")
    assert [q.qtype for q in test.questions[:3]] == ["what", "who", "how"] and len(test.questions) == 9
    val = get_adapter("msrvtt_qa")(split="val", data_dir=str(data["msrvtt"]))
    assert [i.item_id for i in val.items] == ["video3"] and len(val.items[0].texts) == 3  # captions for alignment
    assert "test_qa.json" in test.annotation_identity and "MSRVTT_data.json" in test.annotation_identity


def test_msrvtt_mc_tab_separated_five_candidates(data):
    mc = get_adapter("msrvtt_mc")(split="mc_test", data_dir=str(data["msrvtt"]))
    assert [i.item_id for i in mc.items] == ["video4", "video5", "video6"] and mc.missing["vision"] == ("video6",)
    q = mc.questions[1]
    assert len(q.candidates) == 5 and q.answer == 2 and q.candidates[2] == caption(752)
    assert mc.items[1].texts == (caption(752),) and q.where == "MSR_MC_test.csv row 3"
    base1 = get_adapter("msrvtt_mc")(split="mc_test", data_dir=str(data["msrvtt"]), answer_base=1)
    assert base1.questions[1].answer == 1 and base1.items[1].texts == (caption(751),)
    assert [i.item_id for i in get_adapter("msrvtt_mc")(split="train_9k", data_dir=str(data["msrvtt"])).items][:2] == [
        "video0", "video1"]


def test_music_avqa_fills_templates_reads_anser_and_json_string_types(data, caplog):
    train = get_adapter("music_avqa")(split="train", data_dir=str(data["music-avqa"]))
    q = train.questions[2]
    assert q.text == "Is the left piano louder than the guitar?" and q.answer == "no" and q.qtype == "Audio/Comparative"
    assert train.questions[1].qtype == "Audio-Visual/Counting" and len(train.questions) == 9  # the deleted row left out
    assert "1 questions marked question_deleted left out" in caplog.text
    item = train.items[0]
    assert item.item_id == "00000001" and item.media["audio"] == item.media["vision"]
    assert item.texts == tuple(q.text for q in train.questions[:3])  # no captions: the heads align on the questions
    test = get_adapter("music_avqa")(split="test", data_dir=str(data["music-avqa"]))
    assert test.missing == {"vision": ("00000006",), "audio": ("00000006",)}


def test_music_avqa_reads_the_vast_family_copy(data, tmp_path):
    root = tmp_path / "music"
    (root / "annotations").mkdir(parents=True)
    (root / "videos").symlink_to(data["music-avqa"] / "videos")
    records = [{"video_id": "00000001", "question": ["How many guitar are sounding?", "Is this music?"],
                "answer": ["two", "yes"]}, {"video_id": "00000002", "question": ["Is the piano playing?"], "answer": ["no"]}]
    (root / "annotations" / "descs_qa_train.json").write_text(json.dumps(records))
    items = get_adapter("music_avqa")(split="train", data_dir=str(root))
    assert [q.qid for q in items.questions] == ["00000001#0", "00000001#1", "00000002#0"]
    assert items.questions[1].where == "descs_qa_train.json row 1 question 2" and items.questions[2].answer == "no"
    assert items.items[0].texts == ("How many guitar are sounding?", "Is this music?")
    assert items.items[0].media["audio"] == items.items[0].media["vision"] and not items.missing


@pytest.mark.parametrize(("records", "message"), [
    ([{"video_id": "00000001", "question": ["Is this music?", "How many?"], "answer": ["yes"]}],
     r"^descs_qa_train.json row 1: 2 questions but 1 answers$"),
    ([{"video_id": "00000001", "question": "Is this music?", "answer": "yes"}, {"question": "Who?", "answer": "man"}],
     r"^descs_qa_train.json row 2: question '#0' has no media"),
    ([{"video_id": "00000001", "question": ["Is this music?"], "answer": [""]}],
     r"^descs_qa_train.json row 1 question 1: question '00000001#0' has no answer$"),
])
def test_bad_vast_qa_records_name_the_file_and_row(records, message, data, tmp_path):
    root = tmp_path / "music"
    root.mkdir()
    (root / "videos").symlink_to(data["music-avqa"] / "videos")
    (root / "descs_qa_train.json").write_text(json.dumps(records))
    with pytest.raises(BenchError, match=message):
        get_adapter("vast_qa")(split="train", dataset="music-avqa", data_dir=str(root))


def _rewrite(path: Path, edit) -> None:  # noqa: ANN001 - a function of the parsed rows
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))


BAD_QA = [
    ("msrvtt_qa", "msrvtt_qa/train_qa.json", lambda rows: [rows[0], {k: v for k, v in rows[1].items() if k != "video_id"}],
     r"^train_qa.json row 2: question '1' has no media"),
    ("msrvtt_qa", "msrvtt_qa/train_qa.json", lambda rows: [rows[0], {**rows[1], "video_id": 42}],
     r"^train_qa.json row 2: question '1' has no media \(item 'video42' is not in the annotations\)"),
    ("msrvtt_qa", "msrvtt_qa/train_qa.json", lambda rows: [], r"^train_qa.json: holds no questions, so the answer vocabulary is empty"),
    ("msrvtt_qa", "msrvtt_qa/train_qa.json", lambda rows: [{**rows[0], "answer": " "}], r"^train_qa.json row 1: question '0' has no answer"),
    ("music_avqa", "json/avqa-train.json", lambda rows: [{**rows[0], "templ_values": "[]"}],
     r"^avqa-train.json row 1: 1 placeholders in 'Is the <Object> in the video always playing\?' but 0 templ_values"),
    ("music_avqa", "json/avqa-train.json", lambda rows: [{**rows[0], "type": "Audio"}],
     r"^avqa-train.json row 1: type 'Audio' is not a JSON list"),
]


@pytest.mark.parametrize(("adapter", "file", "edit", "message"), BAD_QA)
def test_bad_qa_files_name_the_file_and_row(adapter, file, edit, message, data, tmp_path):
    import shutil

    key = "msrvtt" if adapter == "msrvtt_qa" else "music-avqa"
    root = shutil.copytree(data[key], tmp_path / key, symlinks=True)
    _rewrite(root / file, edit)
    with pytest.raises(BenchError, match=message):
        get_adapter(adapter)(split="train", data_dir=str(root))


@pytest.mark.parametrize(("row", "message"), [
    (["mcx", "msr4", "video4", "one", "two", "three", "four", "five", "5"],
     r"^MSR_MC_test.csv row 3: answer index 5 is out of range for 5 candidates$"),
    (["mcx", "msr4", "video4", "one", "two", "three", "four", "five", "-1"], r"answer index -1 is out of range"),
    (["mcx", "msr4", "video4", "only", "", "", "", "", "0"],
     r"^MSR_MC_test.csv row 3: a multiple-choice question needs at least 2 candidates, got 1$"),
    (["mcx", "msr4", "video4", "one", "two", "three", "", "", "0"],
     r"^MSR_MC_test.csv row 3: 3 candidates, while the first row has 5$"),
    (["mcx", "msr4", "", "one", "two", "three", "four", "five", "0"], r"^MSR_MC_test.csv row 3: question 'mcx' has no media"),
])
def test_bad_multiple_choice_rows_name_the_file_and_row(row, message, data, tmp_path):
    import shutil

    root = shutil.copytree(data["msrvtt"], tmp_path / "msrvtt", symlinks=True)
    path = root / "msrvtt_data" / "MSR_MC_test.csv"
    lines = path.read_text().splitlines()
    lines[2] = "\t".join(row)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BenchError, match=message):
        get_adapter("msrvtt_mc")(split="mc_test", data_dir=str(root))


# ---------------------------------------------------------------- Hugging Face copy of ESC-50


def _esc50_hf(data_root: Path, out: Path) -> Path:
    """A local `datasets` copy in ashraq/esc50's columns (metadata + an audio struct), saved with save_to_disk."""
    import datasets
    import pyarrow as pa

    rows = list(csv.DictReader(open(data_root / "meta" / "esc50.csv")))
    audio = [{"bytes": (data_root / "audio" / r["filename"]).read_bytes(), "path": r["filename"]}
             if (data_root / "audio" / r["filename"]).is_file() else None for r in rows]
    table = pa.table({"filename": [r["filename"] for r in rows], "fold": [int(r["fold"]) for r in rows],
                      "target": [int(r["target"]) for r in rows], "category": [r["category"] for r in rows],
                      "esc10": [r["esc10"] == "True" for r in rows], "src_file": [int(r["src_file"]) for r in rows],
                      "take": [r["take"] for r in rows],
                      "audio": pa.array(audio, pa.struct([("bytes", pa.binary()), ("path", pa.string())]))})
    ds = datasets.Dataset(table).cast_column("audio", datasets.Audio(decode=False))
    datasets.DatasetDict({"train": ds}).save_to_disk(str(out))
    return out


def test_esc50_from_a_local_hugging_face_copy_matches_the_files(data, tmp_path):
    from pmrl_bench.data.items import BlobRef

    saved = _esc50_hf(data["esc50"], tmp_path / "hf")
    hub = get_adapter("esc50")(split="test", fold=1, hf_dataset="ashraq/esc50", data_dir=str(saved))
    files = get_adapter("esc50")(split="test", fold=1, data_dir=str(data["esc50"]))
    assert [i.item_id for i in hub.items] == [i.item_id for i in files.items] and hub.label_names == files.label_names
    assert [i.label for i in hub.items] == [i.label for i in files.items] and hub.missing == files.missing
    ref = hub.items[0].media["audio"]
    assert isinstance(ref, BlobRef) and ref.read() == files.items[0].media["audio"].read_bytes()
    assert hub.items[0].fields["where"] == "ashraq/esc50 train row 0" and hub.annotation_identity["fold"] == "1"
    with pytest.raises(BenchError, match="hf: cannot load dataset 'ashraq/esc50'"):  # HF_DATASETS_OFFLINE, not cached
        get_adapter("esc50")(split="test", hf_dataset="ashraq/esc50")


# ---------------------------------------------------------------- through the CLI


@pytest.mark.parametrize(("task", "looked_for"), [
    ("esc50", "esc50.csv not found"), ("esc50-hf", None), ("ucf101", "classInd.txt not found"),
    ("msrvtt-qa", "train_qa.json not found"), ("msrvtt-mc", "MSRVTT_data.json or train_val_videodatainfo.json not found"),
    ("music-avqa", "avqa-train.json or descs_qa_train.json not found"),
])
def test_missing_data_fails_in_one_paragraph_and_writes_nothing(task, looked_for, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("PMRL_BENCH_DATA", raising=False)
    results = tmp_path / "results"
    if looked_for is None:  # the Hub copy: not cached and HF_DATASETS_OFFLINE=1
        assert main(["run", "--method", "clip", "--task", task, "--results-dir", str(results)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: hf: cannot load dataset 'ashraq/esc50'") and "hf download" in err
    else:
        assert main(["run", "--method", "clip", "--task", task, "--results-dir", str(results)]) == 2
        assert "PMRL_BENCH_DATA" in capsys.readouterr().err
        (tmp_path / "empty").mkdir()
        assert main(["run", "--method", "clip", "--task", task, "--results-dir", str(results),
                     "--set", f"data_dir={tmp_path / 'empty'}"]) == 2
        err = capsys.readouterr().err.strip()
        assert looked_for in err and "(looked in:" in err and "--set data_dir=" in err
    assert "\n" not in err and not list(results.rglob("*.json"))


def test_bad_input_through_the_cli_is_one_line_exit_2_and_writes_nothing(data, tmp_path, capsys):
    import shutil

    root = shutil.copytree(data["ucf101"], tmp_path / "ucf101")
    lst = root / "ucfTrainTestlist" / "trainlist01.txt"
    lst.write_text(lst.read_text() + "Surfing/v_Surfing_g01_c01.avi 4\n")
    results = tmp_path / "results"
    assert main(["run", "--method", "clip", "--task", "ucf101", "--results-dir", str(results),
                 "--set", f"data_dir={root}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: trainlist01.txt row 10: label 'Surfing' is not in the class list") and "\n" not in err
    assert not list(results.rglob("*.json"))


MC_VAL = ["--set", "validation.fraction=0.3"]  # the fixture's train_9k has 4 videos: carve one for validation


def test_bad_multiple_choice_row_through_the_cli_names_it_and_writes_nothing(data, tmp_path, tmp_path_factory, capsys):
    import shutil

    root = shutil.copytree(data["msrvtt"], tmp_path / "msrvtt", symlinks=True)
    path = root / "msrvtt_data" / "MSR_MC_test.csv"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].rsplit("\t", 1)[0] + "\t7"
    path.write_text("\n".join(lines) + "\n")
    results = tmp_path / "results"
    assert main(["run", "--method", "clip", "--task", "msrvtt-mc", "--results-dir", str(results), "--set",
                 f"data_dir={root}", "--set", f"cache_dir={tmp_path / 'cache'}",
                 *encoder_overrides(tiny_models_dir(tmp_path_factory), frames=2), *SMALL_TRAIN, *MC_VAL]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: MSR_MC_test.csv row 3: answer index 7 is out of range for 5 candidates"
    assert not list(results.rglob("*.json"))


def _run(tmp: Path, task: str, data_dir: Path, sets: list[str], method: str = "clip") -> dict:
    results = tmp / f"results_{task}"
    args = ["run", "--method", method, "--task", task, "--results-dir", str(results), "--set", f"data_dir={data_dir}",
            "--set", f"cache_dir={tmp / 'cache'}", *sets, *SMALL_TRAIN]
    assert main(args) == 0
    (path,) = results.rglob("*.json")
    return json.loads(path.read_text())


def test_end_to_end_esc50_and_ucf101(data, tmp_path, tmp_path_factory):
    models = tiny_models_dir(tmp_path_factory)
    clap = ["--set", f"encoders.text.model={models['clap']}", "--set", f"encoders.audio.model={models['clap']}"]
    record = _run(tmp_path, "esc50", data["esc50"], clap, method="pmrl")
    assert record["status"] == "ok" and set(record["metrics"]) == {"a_probe/acc", "a_zs/acc"}
    cv, folds = record["protocol"]["cross_validation"], record["protocol"]["folds"]
    assert cv["folds"] == [1, 2, 3, 4, 5] and [folds[f]["test"]["split"] for f in "12345"] == [
        f"test_fold{f}" for f in "12345"]
    assert [folds[f]["test"]["n_items"] for f in "12345"] == [2, 3, 3, 3, 3]  # clip 2 of fold 1 has no file
    assert folds["1"]["train"]["n_items"] == 11 and folds["1"]["val"]["n_items"] == 1  # 11 groups + 1 carved
    for prefix in ("a_zs", "a_probe"):
        outcomes = record["per_query"][f"{prefix}/correct"]
        per_fold = [cv["metrics_per_fold"][f][f"{prefix}/acc"] for f in "12345"]
        assert len(outcomes) == 14 and record["metrics"][f"{prefix}/acc"] == pytest.approx(100 * sum(outcomes) / 14)
        assert per_fold[0] == pytest.approx(50 * sum(outcomes[:2])) and record["protocol"][prefix]["n_test"] == 14
        assert cv["mean_over_folds"][f"{prefix}/acc"] == pytest.approx(sum(per_fold) / 5)
    assert record["selected_epoch"] is None and len(record["train_curve"]) == 1  # one epoch, mean over the folds
    assert not list((tmp_path / "results_esc50" / ".checkpoints").glob("*"))
    encoded = sorted(p.relative_to(tmp_path / "cache" / "esc50").parts[:2]
                     for p in (tmp_path / "cache" / "esc50").rglob("embeddings.safetensors"))
    assert encoded == [("all", "audio"), ("all", "text"), ("class_prompts", "text")]  # the folds choose rows only
    assert main(["data", "check", "--task", "esc50", "--set", f"data_dir={data['esc50']}",
                 "--set", f"cache_dir={tmp_path / 'cache'}", *clap]) == 0  # `all` is what the folds read
    assert main(["leaderboard", "--results-dir", str(tmp_path / "results_esc50")]) == 0  # one pooled outcome per clip
    board = (tmp_path / "results_esc50" / "LEADERBOARD_tasks" / "esc50.md").read_text()
    assert f"{record['metrics']['a_zs/acc']:.1f}" in board and "Queries: 14 (a_probe)" in board
    hub = _run(tmp_path, "esc50-hf", _esc50_hf(data["esc50"], tmp_path / "hf"), clap, method="pmrl")
    assert hub["per_query"] == record["per_query"] and hub["metrics"] == record["metrics"]  # same clips, same outcomes
    clip = ["--set", f"encoders.text.model={models['clip']}", "--set", f"encoders.vision.model={models['clip']}",
            "--set", "encoders.vision.frames=2"]
    record = _run(tmp_path, "ucf101", data["ucf101"], clip)
    assert record["status"] == "ok" and len(record["per_query"]["v_probe/correct"]) == 3
    assert record["protocol"]["v_zs"]["prompt"] == "a video of a person doing {label}"


def test_end_to_end_msrvtt_qa_mc_and_music_avqa(data, tmp_path, tmp_path_factory):
    models = tiny_models_dir(tmp_path_factory)
    sets = encoder_overrides(models, frames=2)
    record = _run(tmp_path, "msrvtt-qa", data["msrvtt"], sets)
    assert record["status"] == "ok" and {"qa/acc", "qa_prior/acc", "qa_qonly/acc"} <= set(record["metrics"])
    assert record["protocol"]["test"]["n_questions"] == 6 and record["protocol"]["test"]["n_questions_dropped"] == 3
    assert set(record["protocol"]["qa"]["acc_by_type"]) == {"what", "who", "how"} and record["protocol"]["qa"]["top_k"] == 1000
    record = _run(tmp_path, "msrvtt-mc", data["msrvtt"], [*sets, *MC_VAL])
    assert record["status"] == "ok" and len(record["per_query"]["mc/correct"]) == 2  # video6 has no file
    assert record["protocol"]["mc"]["n_candidates"] == 5 and record["protocol"]["train"]["split"] == "train_9k"
    record = _run(tmp_path, "music-avqa", data["music-avqa"], sets)
    assert record["status"] == "ok" and len(record["per_query"]["qa/correct"]) == 3
    assert set(record["protocol"]["qa"]["acc_by_type"]) == {"Audio-Visual/Existential", "Audio-Visual/Counting",
                                                            "Audio/Comparative"}
    assert record["protocol"]["qa"]["n_answers"] == 3  # yes, two, no: the test's 'three' counts as wrong


# ---------------------------------------------------------------- cross-validated runs (ESC-50's folds)


def test_merge_folds_pools_outcomes_and_reports_the_mean_over_folds():
    from types import SimpleNamespace

    from pmrl_bench.runner import merge_folds

    def part(correct: list[int], digest: str, loss: float) -> dict:
        acc = 100.0 * sum(correct) / len(correct)
        return {"metrics": {"zs/acc": acc}, "per_query": {"zs/correct": correct}, "eval_set": {"zs": digest},
                "protocol": {"method": {"name": "m"}, "test": {"n_items": len(correct)}, "zs": {"mode": "zero_shot"}},
                "timing": {"train_s": 1.0}, "train_curve": [{"epoch": 1, "loss": loss}], "selected_epoch": 1}

    merged = merge_folds(SimpleNamespace(prefixes=["zs"]), [1, 2], [part([1, 0, 1], "a", 2.0), part([0, 1], "b", 4.0)])
    assert merged["per_query"] == {"zs/correct": [1, 0, 1, 0, 1]} and merged["metrics"]["zs/acc"] == pytest.approx(60.0)
    cv = merged["protocol"]["cross_validation"]
    assert cv["mean_over_folds"]["zs/acc"] == pytest.approx((200 / 3 + 50) / 2)
    assert cv["metrics_per_fold"]["2"] == {"zs/acc": 50.0} and merged["protocol"]["zs"]["n_test"] == 5
    assert merged["protocol"]["folds"]["1"] == {"method": {"name": "m"}, "test": {"n_items": 3}}
    import hashlib

    assert merged["eval_set"] == {"zs": hashlib.sha256(b"a\nb").hexdigest()} and merged["timing"] == {"train_s": 2.0}
    assert merged["train_curve"] == [{"epoch": 1, "loss": 3.0}] and merged["selected_epoch"] is None


@pytest.mark.parametrize(("extra", "message"), [
    ({"folds": [1, 1]}, "distinct fold values"),
    ({"folds": [1, 2], "kind": "retrieval", "retrieval": [{"name": "t2a", "query": ["text"], "candidates": ["audio"]}],
      "metrics": ["R@1"], "primary_metric": "t2a/R@1", "classification": []}, "for a classification task"),
])
def test_folds_are_for_classification_tasks_with_distinct_values(extra, message):
    from pmrl_bench.task import load_task, validate_task

    data = {**load_task("esc50").model_dump(), **extra}
    with pytest.raises(BenchError, match=message):
        validate_task(data, "t.yaml")
