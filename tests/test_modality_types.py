"""Typed modalities: a second text modality (subtitles) is a task-file change, encoded from the items' texts."""

import pytest
import torch

from pmrl_bench.data.cache import FeatureCache
from pmrl_bench.data.encoders import ENCODER_FAMILIES, register_encoder
from pmrl_bench.data.encoding import encode_split
from pmrl_bench.data.items import Item, ItemSet
from pmrl_bench.errors import BenchError
from pmrl_bench.task import TaskSpec, parse_task_file, task_files

BASE = {"name": "t", "version": 1, "kind": "retrieval", "adapter": "x", "primary_metric": "s2v/R@1",
        "retrieval": [{"name": "s2v", "query": ["subtitles"], "candidates": ["video"]}]}


class _LengthEncoder:
    """Texts -> [len, n_words]; media -> [len(name), 1] (a deterministic stand-in for a model)."""

    modality = "any"

    def __init__(self, spec):
        self.spec = spec

    def identity(self):
        return {"family": "test_lengths"}

    def encode(self, inputs):
        return torch.tensor([[float(len(str(x))), float(len(str(x).split()))] for x in inputs])


if "test_lengths" not in ENCODER_FAMILIES:
    register_encoder("test_lengths")(_LengthEncoder)


def test_plain_list_infers_types_and_a_mapping_declares_them():
    synthetic = parse_task_file(task_files()["synthetic"])
    assert synthetic.modality_types == {"text": "text", "vision": "features", "audio": "audio"}  # names that are types
    assert synthetic.text_modalities == ["text"]
    spec = TaskSpec.model_validate({**BASE, "modalities": {"text": "text", "subtitles": "text", "video": "video"}})
    assert spec.modalities == ["text", "subtitles", "video"] and spec.text_modalities == ["text", "subtitles"]
    spec = TaskSpec.model_validate({**BASE, "modalities": ["subtitles", "video"], "modality_types": {"subtitles": "text"}})
    assert spec.modality_types == {"subtitles": "text", "video": "video"}


def test_unknown_modality_type_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(task_files()["synthetic"].read_text().replace(
        "modalities: [text, vision, audio]", "modalities: {text: text, vision: picture, audio: audio}"))
    with pytest.raises(BenchError, match=r"bad.yaml: modality_types.vision: Input should be 'text', 'image'"):
        parse_task_file(bad)


def test_second_text_modality_is_encoded_from_the_items_texts(tmp_path):
    spec = TaskSpec.model_validate({**BASE, "modalities": {"text": "text", "subtitles": "text", "video": "video"}})
    items = ItemSet("demo", "test", (
        Item("a", "test", {"video": "a.mp4"}, texts=("a dog", "a brown dog"), fields={"subtitles": "woof woof there"}),
        Item("b", "test", {"video": "bb.mp4"}, texts=("a cat",), fields={"subtitles": ["meow", "purr now"]}),
        Item("c", "test", {}, texts=("no video",), fields={"subtitles": "x"}),  # no media: dropped
    ))
    enc = {"family": "test_lengths"}
    config = {"data": {}, "encoders": {"text": enc, "subtitles": enc, "video": enc}}
    feats = encode_split(spec, config, items, "test", cache=FeatureCache(tmp_path), progress=False)
    assert feats.item_ids == ("a", "b") and feats.info["n_missing"] == 1
    subs = feats.modalities["subtitles"]
    assert subs.row_ids == ("a#0", "b#0", "b#1") and subs.item_index.tolist() == [0, 1, 1]
    assert subs.values.tolist() == [[15.0, 3.0], [4.0, 1.0], [8.0, 2.0]]
    assert feats.modalities["text"].row_ids == ("a#0", "a#1", "b#0")
    assert feats.modalities["video"].values[:, 0].tolist() == [5.0, 6.0]
