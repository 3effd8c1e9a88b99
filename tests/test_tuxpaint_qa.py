"""Tux Paint QA adapters (multiple-choice draw, templated questions) on the stamps tree of test_tuxpaint.py."""

from __future__ import annotations

import json
import sys
from collections import Counter

import numpy as np
import pytest

from pmrl_bench.data.prepare import find_tuxpaint_stamps
from pmrl_bench.errors import BenchError
from pmrl_bench.paths import TASKS_DIR
from pmrl_bench.registry import get_adapter
from pmrl_bench.task import load_task
from tests.test_tuxpaint import adapter_module, split_file, tux_root  # noqa: F401 - fixtures


@pytest.fixture(scope="module")
def qa_module():
    get_adapter("tuxpaint_mc")
    return sys.modules["pmrl_bench_adapters.tuxpaint_qa"]


@pytest.fixture(scope="module")
def wide_split(tux_root, adapter_module, split_file, tmp_path_factory):  # noqa: F811
    """The fixture's split file beside a validation carve of half its train groups (enough for 3 candidates)."""
    from pmrl_bench.data.items import file_sha256

    out = tmp_path_factory.mktemp("wide") / "split.json"
    out.write_text(split_file.read_text())
    carve = adapter_module.build_val(find_tuxpaint_stamps(tux_root), json.loads(out.read_text()), file_sha256(out),
                                     seed=3, fraction=0.5)
    (out.parent / "tuxpaint_val.json").write_text(json.dumps(carve))
    assert len(carve["splits"]["val"]) >= 3
    return out


def _val(split_file):  # noqa: F811
    return json.loads((split_file.parent / "tuxpaint_val.json").read_text())


def test_mc_draw_prefers_the_same_category_and_is_reproducible(wide_split, qa_module):
    split, val = json.loads(wide_split.read_text()), _val(wide_split)
    mc = qa_module.build_mc(split, val, seed=0, n_candidates=3)
    assert mc == qa_module.build_mc(split, val, seed=0, n_candidates=3)
    for key, stamps in (("questions", split["splits"]["test"]), ("val_questions", val["splits"]["val"])):
        stamps = sorted(stamps)
        assert [r["stamp"] for r in mc[key]] == stamps
        for row in mc[key]:
            cands = row["candidates"]
            assert len(cands) == 3 and len(set(cands)) == 3 and cands[row["answer"]] == row["stamp"]
            assert set(cands) <= set(stamps)  # distractors from the same split only
            cat = row["stamp"].split("/")[0]
            n_same = sum(s.split("/")[0] == cat for s in stamps) - 1
            same_drawn = sum(c.split("/")[0] == cat for c in cands if c != row["stamp"])
            assert same_drawn == min(n_same, 2)  # same category first, topped up from the others
    # the test draw does not depend on the validation carve (its own generator)
    assert qa_module.build_mc(split, {**val, "splits": {"val": val["splits"]["val"][:3]}}, 0, 3)["questions"] == mc["questions"]
    with pytest.raises(BenchError, match="cannot give 50 candidates"):
        qa_module.build_mc(split, val, n_candidates=50)


def test_published_mc_file_matches_the_published_split_and_validation_carve(qa_module):
    args = load_task("tuxpaint-mc").adapter_args
    split = json.loads((TASKS_DIR / args["split_file"]).read_text())
    val = json.loads((TASKS_DIR / "tuxpaint_val.json").read_text())
    assert json.loads((TASKS_DIR / args["mc_file"]).read_text()) == qa_module.build_mc(split, val, seed=0)


def test_mc_adapter_gives_one_question_per_test_and_validation_stamp(tux_root, wide_split, qa_module, tmp_path):  # noqa: F811
    mc_path = tmp_path / "mc.json"
    mc_path.write_text(json.dumps(qa_module.build_mc(json.loads(wide_split.read_text()), _val(wide_split), 0, 3)))
    for split in ("test", "val"):
        items = get_adapter("tuxpaint_mc")(split=split, data_dir=str(tux_root), split_file=str(wide_split),
                                          mc_file=str(mc_path))
        caption = {i.item_id: i.texts[0] for i in items.items}
        assert [q.item_id for q in items.questions] == sorted(caption)
        for q in items.questions:
            assert q.candidates[q.answer] == caption[q.item_id] and len(q.candidates) == 3
    train = get_adapter("tuxpaint_mc")(split="train_fit", data_dir=str(tux_root), split_file=str(wide_split),
                                      mc_file=str(mc_path))
    assert train.questions == ()
    for split, key in (("test", "split_test_sha256"), ("val", "split_val_sha256")):
        mc = json.loads(mc_path.read_text())
        mc_path.with_name("bad.json").write_text(json.dumps({**mc, key: "0" * 64}))
        with pytest.raises(BenchError, match=f"has no {split} questions made for the {split} split"):
            get_adapter("tuxpaint_mc")(split=split, data_dir=str(tux_root), split_file=str(wide_split),
                                       mc_file=str(mc_path.with_name("bad.json")))


def test_templated_questions_answers_come_from_the_metadata(tux_root, split_file):  # noqa: F811
    items = get_adapter("tuxpaint_qa")(split="train", data_dir=str(tux_root), split_file=str(split_file))
    again = get_adapter("tuxpaint_qa")(split="train", data_dir=str(tux_root), split_file=str(split_file))
    assert items.questions == again.questions
    by_item = {i.item_id: i for i in items.items}
    assert Counter(q.qtype for q in items.questions) == {"category": len(items.items), "match": len(items.items)}
    captions = {i.texts[0] for i in items.items}
    for q in items.questions:
        item = by_item[q.item_id]
        if q.qtype == "category":
            assert q.answer == item.label
        else:
            shown = q.text.removeprefix("Does this show: ")
            assert shown in captions and q.answer == ("yes" if shown == item.texts[0] else "no")


def test_two_picture_questions_come_from_the_published_pairs(tux_root, wide_split, qa_module, tmp_path):  # noqa: F811
    mc = qa_module.build_mc(json.loads(wide_split.read_text()), _val(wide_split), 0, 3)
    mc_path = tmp_path / "mc.json"
    mc_path.write_text(json.dumps(mc))
    for split, key in (("test", "pick_questions"), ("val", "pick_val_questions")):
        items = get_adapter("tuxpaint_qa")(split=split, data_dir=str(tux_root), split_file=str(wide_split),
                                          mc_file=str(mc_path))
        stamps = {i.item_id for i in items.items}
        picks = [q for q in items.questions if q.qtype == "pick"]
        assert [q.item_id for q in picks] == sorted(stamps) == [r["stamp"] for r in mc[key]]
        for q in picks:  # two stamps of the split, the right one at the answer index
            assert len(q.candidates) == 2 and set(q.candidates) <= stamps and q.candidates[q.answer] == q.item_id
    train = get_adapter("tuxpaint_qa")(split="train_fit", data_dir=str(tux_root), split_file=str(wide_split),
                                      mc_file=str(mc_path))
    assert {q.qtype for q in train.questions} == {"category", "match"}  # the pick protocol is zero-shot
    # the draw: same category first (n_candidates = 2), its own generators (the description draw is unchanged)
    assert mc["pick_questions"] == qa_module.mc_rows(json.loads(wide_split.read_text())["splits"]["test"],
                                                      np.random.default_rng([0, 2]), 2)
