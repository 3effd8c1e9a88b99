"""`validate`: every bad result file is reported with its path and reason; the exit code says if any is bad."""

import json
import shutil

import numpy as np
import pytest
from records_factory import make_record, write

from pmrl_bench.cli import main
from pmrl_bench.results.table import check_record, load_runs

RANKS = np.array([1, 3, 1, 12, 2, 7, 1, 25, 4, 1])


def edit(path, change):
    """Rewrite a JSON record with change(dict) applied (for making bad files)."""
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return path


def validate(capsys, path):
    rc = main(["validate", str(path)])
    return rc, capsys.readouterr().out


def test_valid_folder_exits_0(tmp_path, capsys):
    for seed in range(3):
        write(tmp_path, "synthetic", "pmrl", seed, {"t2va/rank": RANKS + seed})
    write(tmp_path, "synthetic", "pmrl", 3, {}, status="failed")
    rc, out = validate(capsys, tmp_path)
    assert rc == 0
    assert out.strip() == f"checked 4 result file(s) under {tmp_path}: 4 valid, 0 invalid"


BAD_CASES = {
    "truncated": (lambda p: p.write_text(p.read_text()[:50]), "Invalid JSON"),
    "missing field": (lambda p: edit(p, lambda d: d.pop("seed")), "seed: Field required"),
    "unknown field": (lambda p: edit(p, lambda d: d.update(extra=1)), "extra: Extra inputs are not permitted"),
    "wrong type": (lambda p: edit(p, lambda d: d.update(seed="zero")), "seed: Input should be a valid integer"),
    "fractional rank": (lambda p: edit(p, lambda d: d["per_query"]["t2va/rank"].__setitem__(0, 1.5)),
                        "per_query.t2va/rank.0"),
    "rank 0": (lambda p: edit(p, lambda d: d["per_query"]["t2va/rank"].__setitem__(0, 0)),
               "ranks must lie in [1, 100]"),
    "rank above gallery": (lambda p: edit(p, lambda d: d["per_query"]["t2va/rank"].__setitem__(0, 101)),
                           "ranks must lie in [1, 100]"),
    "metric mismatch": (lambda p: edit(p, lambda d: d["metrics"].update({"t2va/R@1": 41.0})),
                        "metric 't2va/R@1' = 41.0 but per_query gives 40.0"),
    "metric NaN": (lambda p: p.write_text(p.read_text().replace('"t2va/MnR": 5.7', '"t2va/MnR": NaN')),
                   "metric 't2va/MnR' is not finite"),
    "unknown metric": (lambda p: edit(p, lambda d: d["metrics"].update({"t2va/top3": 1.0})),
                       "metric 't2va/top3' is not a known metric"),
    "metric without outcomes": (lambda p: edit(p, lambda d: d["metrics"].update({"v2t/R@1": 1.0})),
                                "metric 'v2t/R@1' has no per-query outcomes"),
    "length mismatch": (lambda p: edit(p, lambda d: d["protocol"]["t2va"].update(n_queries=11)),
                        "protocol t2va.n_queries = 11 but per_query has 10"),
    "bad per_query key": (lambda p: edit(p, lambda d: d["per_query"].update({"t2va/score": [1]})),
                          "per_query key 't2va/score'"),
    "no outcomes": (lambda p: edit(p, lambda d: d.update(per_query={}, metrics={})), "no per_query outcomes"),
    "bad digest": (lambda p: edit(p, lambda d: d["eval_set"].update(t2va="abc")), "not a sha256 hex digest"),
    "schema version": (lambda p: edit(p, lambda d: d.update(schema_version=3)), "schema_version 3 is not in 1..2"),
    "renamed": (lambda p: p.rename(p.with_name("0000000000000000.json")), "path does not match the record"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_each_bad_file_is_reported(tmp_path, capsys, case):
    good = write(tmp_path, "synthetic", "pmrl", 1, {"t2va/rank": RANKS + 1})
    bad = write(tmp_path, "synthetic", "pmrl", 0, {"t2va/rank": RANKS})
    damage, reason = BAD_CASES[case]
    damage(bad)
    rc, out = validate(capsys, tmp_path)
    assert rc == 1
    lines = out.strip().splitlines()
    assert len(lines) == 2 and reason in lines[0], lines
    assert lines[0].startswith(str(tmp_path / "synthetic" / "pmrl"))
    assert lines[1] == f"checked 2 result file(s) under {tmp_path}: 1 valid, 1 invalid"
    assert str(good) not in out


def test_correctness_must_be_0_or_1(tmp_path):
    rec = make_record("t", "m", 0, {"cls/correct": np.array([0, 1, 1])})
    assert check_record(rec) == []
    rec.per_query["cls/correct"][0] = 2
    assert any("correctness must be 0 or 1" in r for r in check_record(rec))


def test_duplicate_seeds_of_an_entity(tmp_path, capsys):
    first = write(tmp_path, "synthetic", "pmrl", 0, {"t2va/rank": RANKS})
    copy = first.with_name("ffffffffffffffff.json")
    shutil.copy(first, copy)
    edit(copy, lambda d: d.update(run_id="ffffffffffffffff"))
    write(tmp_path, "synthetic", "pmrl", 0, {"t2va/rank": RANKS}, config_hash="b" * 16)  # other config: fine
    rc, out = validate(capsys, tmp_path)
    assert rc == 1
    assert out.count("duplicate seed 0 of pmrl@aaaaaaaaaaaaaaaa on synthetic") == 2
    assert out.splitlines()[-1].endswith("1 valid, 2 invalid")
    table = load_runs(tmp_path)
    assert len(table.runs) == 1 and table.runs[0].config_hash == "b" * 16


def test_single_file_and_missing_path(tmp_path, capsys):
    path = write(tmp_path, "synthetic", "pmrl", 0, {"t2va/rank": RANKS})
    assert validate(capsys, path)[0] == 0
    rc = main(["validate", str(tmp_path / "nope")])
    assert rc == 2 and "not found" in capsys.readouterr().err


def test_validate_never_modifies_files(tmp_path, capsys):
    bad = write(tmp_path, "synthetic", "pmrl", 0, {"t2va/rank": RANKS})
    bad.write_text("{")
    validate(capsys, tmp_path)
    assert bad.read_text() == "{"


def test_integer_outside_int64_is_a_bad_file(tmp_path, capsys):
    bad = write(tmp_path, "synthetic", "pmrl", 0, {"t2va/rank": RANKS})
    edit(bad, lambda d: d["per_query"]["t2va/rank"].__setitem__(0, 10**20))
    rc, out = validate(capsys, tmp_path)
    assert rc == 1 and "out of range" in out


def test_task_meta_directions_must_agree_with_the_metric_registry():
    meta = {"version": 1, "primary_metric": "t2v/R@1", "metrics": ["R@1", "MnR"], "prefixes": ["t2v"],
            "directions": {"R@1": "higher", "MnR": "lower"}}
    ranks = {"t2v/rank": np.array([1, 2, 3])}
    assert check_record(make_record("t", "m", 0, ranks, task_meta=meta)) == []
    wrong = {**meta, "directions": {"R@1": "higher", "MnR": "higher", "R@l": "higher"}}
    assert check_record(make_record("t", "m", 0, ranks, task_meta=wrong)) == [
        "task_meta.directions['MnR'] = 'higher' disagrees with the metric registry",
        "task_meta.directions['R@l'] = 'higher' disagrees with the metric registry"]
