"""`python -m pmrl_bench data extract|check|prepare`: fill or inspect the feature cache of a task.

    data extract --task msrvtt [--set data_dir=...] [--device cuda]   encode every split (tqdm bar), cache it
    data check   --task msrvtt                                        present / missing / stale / corrupt, no encoding
    data prepare <target>                                             handled by pmrl_bench.data.prepare
"""

from __future__ import annotations

import argparse
import copy
from typing import Any

from pmrl_bench.errors import BenchError

ROLES = ("train", "test")


def data_config(task: str, overrides: list[str]) -> tuple[Any, dict[str, Any]]:
    """(task spec, {"data": ..., "encoders": ...}) with the `--set` overrides applied."""
    from pmrl_bench.config import apply_override, parse_overrides
    from pmrl_bench.task import load_task

    spec = load_task(task)
    config: dict[str, Any] = {"method_params": {}, "train": {}, "data": copy.deepcopy(dict(spec.adapter_args)),
                              "encoders": copy.deepcopy(dict(spec.encoders)), "validation": spec.validation.model_dump()}
    for key, value in parse_overrides(overrides):
        if key.split(".")[0] in ("method", "train", "evaluation", "warm_start", "rerank", "robustness"):
            continue  # training settings do not change features
        apply_override(config, key, value)
    return spec, {k: config[k] for k in ("data", "encoders", "validation")}


def roles(config: dict[str, Any]) -> tuple[str, ...]:
    """The splits a task reads from its adapter: train, test, and val when the task has its own validation split."""
    return (*ROLES, "val") if config["validation"].get("split") else ROLES


def _items(spec: Any, config: dict[str, Any], role: str) -> Any:
    """The items a role encodes: its split's, or the `all` split that every fold of a cross-validated task reads."""
    from pmrl_bench.data.load import read_named_split, read_split

    return read_named_split(spec, config, "all") if spec.folds else read_split(spec, config, role)


def extract(args: argparse.Namespace) -> int:
    """Encode every split of a task into the feature cache."""
    from pmrl_bench.data.cache import FeatureCache, default_cache_root
    from pmrl_bench.data.encoding import encode_split, plan_split
    from pmrl_bench.data.features import SplitFeatures

    spec, config = data_config(args.task, args.overrides)
    cache = FeatureCache(default_cache_root(config["data"]))
    for role in roles(config):
        items = _items(spec, config, role)
        if isinstance(items, SplitFeatures):
            print(f"{spec.name} {role} ({items.split}): features come from the adapter; nothing to extract")
            continue
        as_role = "test" if role == "val" else role  # validation is evaluated like test (caption policy)
        before = {p.modality: cache.state(p.key)[0] for p in plan_split(spec, config, items, as_role, args.device)[0]}
        feats = encode_split(spec, config, items, role=as_role, device=args.device, cache=cache, progress=True)
        info = feats.info
        state = ", ".join(f"{m} {'cached' if before[m] == 'present' else 'encoded'}" for m in feats.modalities)
        missing = (f"; {info['n_missing']} items without media (first: {', '.join(info['missing_first_ids'][:3])})"
                   if info["n_missing"] else "")
        print(f"{spec.name} {role} ({items.split}): {info['n_items']} items, {state}{missing}")
    return 0


def check(args: argparse.Namespace) -> int:
    """Report the cache state of every (split, modality) without encoding; exit 1 unless all are present."""
    from pmrl_bench.data.cache import FeatureCache, default_cache_root
    from pmrl_bench.data.encoding import plan_split
    from pmrl_bench.data.features import SplitFeatures

    spec, config = data_config(args.task, args.overrides)
    cache = FeatureCache(default_cache_root(config["data"]))
    print(f"feature cache: {cache.root}")
    complete = True
    for role in roles(config):
        items = _items(spec, config, role)
        if isinstance(items, SplitFeatures):
            print(f"  {role:<5} {items.split}: pre-extracted features ({items.n_items} items)")
            continue
        plans, info = plan_split(spec, config, items, "test" if role == "val" else role, args.device)
        missing = f", {info['n_missing']} without media" if info["n_missing"] else ""
        print(f"  {role:<5} {items.split}: {info['n_items']} items{missing}, caption policy {info['caption_policy']}")
        for plan in plans:
            state, detail = cache.state(plan.key)
            complete &= state == "present"
            print(f"    {plan.modality:<7} {state:<8} {plan.key.encoder_slug} {plan.key.digest[:16]}  {detail}")
    return 0 if complete else 1


def cli_data(args: argparse.Namespace) -> int:
    """Dispatch the `data` verb."""
    if args.action == "prepare":
        from pmrl_bench.data.prepare import cli_prepare

        return cli_prepare(args)
    if not args.task:
        raise BenchError(f"`data {args.action}` needs --task <name> (see `python -m pmrl_bench list tasks`)")
    from pmrl_bench.plan import check_device

    check_device(args.device)
    return extract(args) if args.action == "extract" else check(args)
