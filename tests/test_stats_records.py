"""Grouping runs into entities and per-prefix scopes: reference eval set, unverified and left-out runs."""

import numpy as np
import pytest
from records_factory import digest, write

from pmrl_bench.errors import BenchError
from pmrl_bench.results.table import (
    build_scope,
    check_config_choices,
    load_runs,
    parse_config_choices,
    task_entities,
)

RANKS = np.arange(1, 21)


def scope_of(root, task="t", choices=None):
    table = load_runs(root)
    return build_scope(task, "p", task_entities(table.runs, task, choices))


def test_majority_digest_is_the_reference_and_ties_take_the_smallest(tmp_path):
    for seed in range(2):
        write(tmp_path, "t", "a", seed, {"p/rank": RANKS}, eval_set={"p": digest("x")})
    write(tmp_path, "t", "b", 0, {"p/rank": RANKS}, eval_set={"p": digest("y")})
    scope = scope_of(tmp_path)
    assert scope.digest == digest("x") and list(scope.samples) == ["a@" + "a" * 16]
    assert [why for _, why in scope.left_out] == [f"eval set {digest('y')[:8]}"]
    write(tmp_path, "t", "b", 1, {"p/rank": RANKS}, eval_set={"p": digest("y")})
    assert scope_of(tmp_path).digest == min(digest("x"), digest("y"))


def test_runs_without_digest(tmp_path):
    write(tmp_path, "t", "a", 0, {"p/rank": RANKS}, eval_set={"p": digest("x")})
    write(tmp_path, "t", "b", 0, {"p/rank": RANKS}, eval_set={})  # same N and gallery: accepted, unverified
    write(tmp_path, "t", "c", 0, {"p/rank": RANKS[:10]}, eval_set={})  # other N: left out
    write(tmp_path, "t", "d", 0, {"p/rank": RANKS}, eval_set={}, n_candidates=50)  # other gallery: left out
    scope = scope_of(tmp_path)
    assert sorted(scope.samples) == ["a@" + "a" * 16, "b@" + "a" * 16]
    assert scope.unverified == ["b"]
    assert sorted(why for _, why in scope.left_out) == ["10 queries, not 20", "other gallery size"]


def test_groups_are_part_of_the_identity(tmp_path):
    groups = np.repeat(np.arange(10), 2)
    for seed in range(2):
        write(tmp_path, "t", "a", seed, {"p/rank": RANKS}, groups={"p": groups})
    write(tmp_path, "t", "b", 0, {"p/rank": RANKS})
    scope = scope_of(tmp_path)
    assert scope.n_units == 10 and scope.n_queries == 20
    assert [why for _, why in scope.left_out] == ["other query groups"]


def test_entities_labels_and_config_choices(tmp_path):
    write(tmp_path, "t", "a", 0, {"p/rank": RANKS})
    write(tmp_path, "t", "a", 0, {"p/rank": RANKS}, config_hash="b" * 16)
    write(tmp_path, "t", "c", 0, {"p/rank": RANKS})
    runs = load_runs(tmp_path).runs
    assert [e.label for e in task_entities(runs, "t")] == ["a", "a (default) [bbbbbbbb]", "c"]
    choices = parse_config_choices(["a=bb"])
    check_config_choices(runs, choices)
    assert [e.label for e in task_entities(runs, "t", choices)] == ["a", "c"]
    with pytest.raises(BenchError, match="expected METHOD=HASH"):
        parse_config_choices(["a"])
    with pytest.raises(BenchError, match="did you mean 'a'"):
        check_config_choices(runs, {"aa": "b"})


def test_layout_from_task_file_or_records(tmp_path):
    from pmrl_bench.results.table import task_layout

    write(tmp_path, "synthetic", "a", 0, {"t2va/rank": RANKS})
    write(tmp_path, "synthetic-noisy-anchor", "a", 0, {"other/rank": RANKS})
    runs = load_runs(tmp_path).runs
    layout = task_layout("synthetic", runs)  # tasks/synthetic.yaml: metrics [R@1, R@5, R@10, MdR, MnR]
    assert layout.columns == ["t2va/R@1", "t2va/R@5", "t2va/R@10", "t2va/MdR", "t2va/MnR"]
    assert layout.primary == "t2va/R@1" and layout.note is None
    layout = task_layout("synthetic-noisy-anchor", runs)  # the records' prefix is not in the task file
    assert layout.columns[0] == "other/R@1" and layout.columns[-1] == "other/MRR"
    assert layout.note.startswith("no metric of tasks/synthetic-noisy-anchor.yaml") and layout.primary is None
