"""Issue 10: validation split, selection on validation, the training curve, run identity, bad input."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from pmrl_bench.config import config_label, resolve_config, run_id
from pmrl_bench.data.features import ModalityFeatures, SplitFeatures
from pmrl_bench.data.validation import carve_validation
from pmrl_bench.errors import BenchError
from pmrl_bench.plan import RunRequest
from pmrl_bench.results.record import RunResult
from pmrl_bench.runner import execute
from pmrl_bench.task import load_task
from pmrl_bench.train.curve import pair_cosines, probe_rows
from pmrl_bench.train.heads import ProjectionHeads
from tests.helpers import SMALL, SMALL_ARGS


def _req(tmp_path, method="pmrl", extra=(), **kw):
    return RunRequest(method=method, overrides=SMALL + list(extra), results_dir=str(tmp_path), **kw)


def _split(groups: list[str], captions: int = 2) -> SplitFeatures:
    n = len(groups)
    ids = tuple(f"i{k}" for k in range(n))
    text_index = torch.arange(n).repeat_interleave(captions)
    text = ModalityFeatures(torch.arange(n * captions, dtype=torch.float32).view(-1, 1), text_index,
                            tuple(f"i{k}#{c}" for k in range(n) for c in range(captions)))
    vision = ModalityFeatures(torch.arange(n, dtype=torch.float32).view(-1, 1) * 10, torch.arange(n), ids)
    return SplitFeatures("train", ids, {"text": text, "vision": vision}, groups=tuple(groups))


def test_carve_keeps_groups_whole_and_rows_with_their_items():
    groups = [f"g{k // 3}" for k in range(30)]  # 10 groups of 3 items
    train, val = carve_validation(_split(groups), 0.2, seed=0)
    assert val.n_items == 6 and train.n_items == 24  # 2 whole groups
    assert not set(train.groups) & set(val.groups)
    assert set(train.item_ids) | set(val.item_ids) == {f"i{k}" for k in range(30)}
    for part in (train, val):
        k = np.array([int(i[1:]) for i in part.item_ids])
        assert torch.equal(part.modalities["vision"].values.view(-1), torch.tensor(k * 10.0))
        owner = [part.item_ids[i] for i in part.modalities["text"].item_index.tolist()]
        assert [r.split("#")[0] for r in part.modalities["text"].row_ids] == owner
        assert part.modalities["vision"].one_row_per_item(part.n_items)
    again = carve_validation(_split(groups), 0.2, seed=0)[1]
    other = carve_validation(_split(groups), 0.2, seed=1)[1]
    assert again.item_ids == val.item_ids and other.item_ids != val.item_ids


def test_carve_by_item_without_groups_and_empty_validation_refused():
    split = _split([f"g{k}" for k in range(20)])
    plain = SplitFeatures(split.split, split.item_ids, split.modalities)
    assert carve_validation(plain, 0.1, 0)[1].n_items == 2
    with pytest.raises(BenchError, match="validation split would be empty"):
        carve_validation(_split(["a", "a", "b"]), 0.1, 0)


def test_pair_cosines_match_a_direct_computation():
    torch.manual_seed(0)
    heads = ProjectionHeads({"text": 5, "vision": 4, "audio": 3}, 6, 8, 2, 0.0)
    rows = {"text": torch.randn(7, 5), "vision": torch.randn(7, 4), "audio": torch.randn(7, 3)}
    got = pair_cosines(heads, rows)
    with torch.no_grad():
        emb = {m: heads.heads[m](x).double() for m, x in rows.items()}
    cos = torch.nn.functional.cosine_similarity
    pos = sum(float(cos(emb["text"][i], emb["vision"][i], dim=0)) for i in range(7)) / 7
    neg = sum(float(cos(emb["text"][i], emb["vision"][j], dim=0)) for i in range(7) for j in range(7) if i != j) / 42
    assert got["cos_pos/text-vision"] == pytest.approx(pos, rel=1e-10)
    assert got["cos_neg/text-vision"] == pytest.approx(neg, rel=1e-10)
    assert set(got) == {f"cos_{k}/{p}" for k in ("pos", "neg") for p in ("text-vision", "text-audio", "vision-audio")}


def test_probe_rows_take_each_items_first_row():
    split = _split([f"g{k}" for k in range(5)], captions=3)
    rows = probe_rows(split, ["text", "vision"], 4)
    assert rows["text"].view(-1).tolist() == [0.0, 3.0, 6.0, 9.0]
    assert rows["vision"].view(-1).tolist() == [0.0, 10.0, 20.0, 30.0]


def test_best_val_tests_the_best_epochs_state(tmp_path):
    rec = execute(_req(tmp_path / "best", "clip", [("epochs", 5)]))
    vals = [p["val"] for p in rec.train_curve]
    best = int(np.argmax(vals)) + 1  # argmax: the first maximum (ties -> earlier epoch)
    assert rec.selected_epoch == best and rec.protocol["select"]["val_score"] == max(vals)
    # the state of epoch k is what k epochs give: training does not depend on the validation passes
    again = execute(_req(tmp_path / "k", "clip", [("epochs", best), ("select", "last")]))
    assert again.per_query == rec.per_query and again.metrics == rec.metrics
    assert again.selected_epoch == best and all("val" not in p for p in again.train_curve)


def test_select_last_keeps_the_last_epoch(tmp_path):
    rec = execute(_req(tmp_path, "clip", [("epochs", 4), ("select", "last")]))
    assert rec.selected_epoch == 4 and rec.protocol["select"]["rule"] == "last"


def test_curve_and_validation_are_recorded(tmp_path):
    rec = execute(_req(tmp_path, "pmrl"))
    assert [p["epoch"] for p in rec.train_curve] == [1, 2, 3]
    for point in rec.train_curve:
        for key in ("loss", "L_intra", "L_inter", "sigma1", "grad_norm", "val", "cos_pos/text-vision",
                    "cos_neg/vision-audio"):
            assert np.isfinite(point[key]), key
        assert point["loss"] == pytest.approx(point["L_intra"] + point["L_inter"], rel=1e-6)  # lambda_inter 1
        assert 0 <= point["val"] <= 100
    val = rec.protocol["val"]
    assert val["n_items"] == 128 and val["n_queries"] == {"t2va": 128} and len(val["eval_set"]["t2va"]) == 64
    assert val["eval_set"]["t2va"] != rec.eval_set["t2va"]
    assert rec.schema_version == 2 and rec.config_label.startswith("epochs=3")
    clip = execute(_req(tmp_path, "clip"))
    assert {"L_text-vision", "L_text-audio", "L_vision-audio", "temperature"} <= set(clip.train_curve[0])


def test_record_schema_checks_the_curve():
    base = {"run_id": "x", "config_hash": "y", "method": "pmrl", "task": "synthetic", "seed": 0, "status": "ok",
            "config": {}, "created_at": "now"}
    RunResult.model_validate({**base, "train_curve": [{"epoch": 1, "loss": 1.0, "grad_norm": 0.1}]})
    RunResult.model_validate(base)  # a schema-1 record (no curve) still loads
    with pytest.raises(ValueError, match="lacks"):
        RunResult.model_validate({**base, "train_curve": [{"epoch": 1, "loss": 1.0}]})
    with pytest.raises(ValueError, match="consecutive"):
        RunResult.model_validate({**base, "train_curve": [{"epoch": 1, "loss": 1.0, "grad_norm": 0.1}] * 2})


def test_reporting_only_settings_keep_the_run_id():
    spec = load_task("synthetic")
    base = resolve_config(spec, "pmrl")
    assert run_id(resolve_config(spec, "pmrl", [("curve_subset", 64)]), 0) == run_id(base, 0)
    assert run_id(resolve_config(spec, "pmrl", [("select", "last")]), 0) != run_id(base, 0)
    assert run_id(resolve_config(spec, "pmrl", [("validation.fraction", 0.2)]), 0) != run_id(base, 0)


def test_config_label_names_what_differs():
    spec = load_task("synthetic")
    assert config_label(spec, "pmrl", resolve_config(spec, "pmrl")) == ""
    cfg = resolve_config(spec, "pmrl", [("tau1", 0.5), ("tau2", 0.03)])
    assert config_label(spec, "pmrl", cfg) == "tau1=0.5, tau2=0.03"
    cfg = resolve_config(spec, "pmrl", [("select", "last"), ("curve_subset", 9)])
    assert config_label(spec, "pmrl", cfg) == "select=last"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--set", "select=best"], "--set train.select"),
        (["--set", "validation.fraction=0.6"], "validation.fraction"),
        (["--set", "validation.fraction=0"], "validation.fraction"),
        (["--set", "validation.bogus=1"], "validation.bogus"),
    ],
)
def test_bad_protocol_input_is_one_line_exit_2(args, expected, tmp_path):
    res = subprocess.run([sys.executable, "-m", "pmrl_bench", "run", "--method", "clip", "--results-dir",
                          str(tmp_path), *SMALL_ARGS, *args], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert expected in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.rglob("*.json"))


def test_a_validation_split_the_data_cannot_give_is_exit_2(tmp_path):
    res = subprocess.run([sys.executable, "-m", "pmrl_bench", "run", "--method", "clip", "--results-dir",
                          str(tmp_path), *SMALL_ARGS, "--set", "data.sizes={train: 512, test: 128}"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "'val'" in res.stderr and len(res.stderr.strip().splitlines()) == 1
