"""Tux Paint QA adapters (multiple-choice draw, templated questions) on the stamps tree of test_tuxpaint.py."""

from __future__ import annotations

import json
import sys
from collections import Counter

import pytest

from pmrl_bench.errors import BenchError
from pmrl_bench.paths import TASKS_DIR
from pmrl_bench.registry import get_adapter
from pmrl_bench.task import load_task
from tests.test_tuxpaint import adapter_module, split_file, tux_root  # noqa: F401 - fixtures


@pytest.fixture(scope="module")
def qa_module():
    get_adapter("tuxpaint_mc")
    return sys.modules["pmrl_bench_adapters.tuxpaint_qa"]


def test_mc_draw_prefers_the_same_category_and_is_reproducible(split_file, qa_module):  # noqa: F811
    split = json.loads(split_file.read_text())
    mc = qa_module.build_mc(split, seed=0, n_candidates=3)
    assert mc == qa_module.build_mc(split, seed=0, n_candidates=3)
    test = sorted(split["splits"]["test"])
    assert [r["stamp"] for r in mc["questions"]] == test
    for row in mc["questions"]:
        cands = row["candidates"]
        assert len(cands) == 3 and len(set(cands)) == 3 and cands[row["answer"]] == row["stamp"]
        cat = row["stamp"].split("/")[0]
        n_same = sum(s.split("/")[0] == cat for s in test) - 1
        same_drawn = sum(c.split("/")[0] == cat for c in cands if c != row["stamp"])
        assert same_drawn == min(n_same, 2)  # same category first, topped up from the others
    with pytest.raises(BenchError, match="cannot give 50 candidates"):
        qa_module.build_mc(split, n_candidates=50)


def test_published_mc_file_matches_the_published_split(qa_module):
    args = load_task("tuxpaint-mc").adapter_args
    split = json.loads((TASKS_DIR / args["split_file"]).read_text())
    assert json.loads((TASKS_DIR / args["mc_file"]).read_text()) == qa_module.build_mc(split, seed=0)


def test_mc_adapter_gives_one_question_per_test_stamp_with_real_descriptions(tux_root, split_file, qa_module, tmp_path):  # noqa: F811
    mc_path = tmp_path / "mc.json"
    mc_path.write_text(json.dumps(qa_module.build_mc(json.loads(split_file.read_text()), 0, 3)))
    items = get_adapter("tuxpaint_mc")(split="test", data_dir=str(tux_root), split_file=str(split_file),
                                      mc_file=str(mc_path))
    caption = {i.item_id: i.texts[0] for i in items.items}
    assert [q.item_id for q in items.questions] == sorted(caption)
    for q in items.questions:
        assert q.candidates[q.answer] == caption[q.item_id] and len(q.candidates) == 3
    train = get_adapter("tuxpaint_mc")(split="train", data_dir=str(tux_root), split_file=str(split_file),
                                      mc_file=str(mc_path))
    assert train.questions == ()
    mc = json.loads(mc_path.read_text())
    mc["split_test_sha256"] = "0" * 64
    mc_path.write_text(json.dumps(mc))
    with pytest.raises(BenchError, match="made for another test split"):
        get_adapter("tuxpaint_mc")(split="test", data_dir=str(tux_root), split_file=str(split_file),
                                   mc_file=str(mc_path))


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
