"""Resolve a run's configuration (task defaults + method defaults + `--set` overrides) and its identity."""

from __future__ import annotations

import copy
import hashlib
import json
import math
from typing import Any

from pydantic import ValidationError

from pmrl_bench.errors import BenchError, unknown_name
from pmrl_bench.registry import (
    check_score,
    counts_text,
    method_defaults,
    method_modality_counts,
    method_names,
    method_scores,
)
from pmrl_bench.safeio import YamlSyntaxError, load_yaml
from pmrl_bench.task import (
    EvaluationConfig,
    TaskSpec,
    TrainConfig,
    ValidationSpec,
    check_evaluation,
    load_task,
    scored_tuples,
)

SECTIONS = {
    "method": "method_params", "train": "train", "data": "data", "encoders": "encoders", "evaluation": "evaluation",
    "validation": "validation",
}
# Keys that say where things are, not what is computed: left out of run_id and config_hash.
NON_IDENTITY_DATA_KEYS = frozenset({"data_dir", "features_root", "cache_dir"})
NON_IDENTITY_ENCODER_KEYS = frozenset({"batch_size", "device", "decode_workers"})
# Training keys that only change what is reported (the curve's probe), never the trained state or the scores.
NON_IDENTITY_TRAIN_KEYS = frozenset({"curve_subset"})


def parse_overrides(pairs: list[str]) -> list[tuple[str, Any]]:
    """Parse `key=value` strings; values are read as YAML scalars (`0.1`, `true`, `[1, 2]`)."""
    out = []
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise BenchError(f"--set expects key=value, got {pair!r}")
        try:
            value = load_yaml(raw, f"--set {key}") if raw else ""
        except YamlSyntaxError:
            value = raw
        out.append((key.strip(), number_or_self(value)))
    return out


def number_or_self(value: Any) -> Any:
    """A string that reads as a number (YAML 1.1 reads 1e-5 as a string) as that float, else `value`."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def check_finite(key: str, value: Any, default: Any = None) -> None:
    """Refuse inf/nan anywhere in a setting's value (unless the default itself is not finite)."""
    if isinstance(value, float) and not math.isfinite(value):
        if not (isinstance(default, float) and not math.isfinite(default)):
            raise BenchError(f"--set {key}: must be a finite number, got {value!r}")
    elif isinstance(value, dict):
        for k, v in value.items():
            check_finite(f"{key}.{k}", v)
    elif isinstance(value, list):
        for v in value:
            check_finite(key, v)


def _coerce(key: str, value: Any, default: Any) -> Any:
    value = number_or_self(value) if isinstance(default, float) else value
    if isinstance(value, bool) and default is not None and not isinstance(default, bool):
        raise BenchError(f"--set {key}: expected {type(default).__name__}, got {value!r}")
    if default is None or isinstance(value, type(default)):
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise BenchError(f"--set {key}: expected {type(default).__name__}, got {value!r}")


def override_section(config: dict[str, Any], key: str) -> tuple[str, list[str]]:
    """The config section a `--set` key (short or dotted) writes to and its path inside that section."""
    head, _, rest = key.partition(".")
    if head in SECTIONS and rest:
        section, path = SECTIONS[head], rest.split(".")
    elif rest and any(head in config.get(s, {}) for s in ("train", "evaluation")):  # warm_start.lr, rerank.k
        section, path = next(s for s in ("train", "evaluation") if head in config.get(s, {})), key.split(".")
    else:
        owners = [s for s in ("method_params", "train", "data", "evaluation") if key in config.get(s, {})]
        if len(owners) > 1:
            alts = " or ".join(f"{k}.{key}" for k, v in SECTIONS.items() if v in owners)
            raise BenchError(f"--set {key} is ambiguous; write {alts}")
        if not owners:
            if key in NON_IDENTITY_DATA_KEYS:
                owners = ["data"]
            else:
                known = [k for s in ("method_params", "train", "data") for k in config[s]]
                raise unknown_name("--set key", key, known + [f"{k}.<key>" for k in SECTIONS])
        section, path = owners[0], [key]
    return section, path


def evaluation_only(task: str | TaskSpec, method: str, overrides: list[tuple[str, Any]]) -> list[str]:
    """The override keys that only change evaluation (the `evaluation` section: re-ranker, robustness), in order;
    the rest determine training, so runs that differ only in these train identically."""
    config = resolve_config(task, method)
    return [key for key, _ in overrides if override_section(config, key)[0] == "evaluation"]


def apply_override(config: dict[str, Any], key: str, value: Any) -> None:
    """Set one `--set` key in a resolved config (short or dotted key), checking it exists and its type."""
    section, path = override_section(config, key)
    node = config[section]
    for part in path[:-1]:
        if node.get(part) in (None, True):  # an optional block that is off (or on with defaults): open it
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise BenchError(f"--set {key}: {part!r} is not a mapping")
    leaf = path[-1]
    check_finite(key, value, node.get(leaf))
    if section in ("method_params", "train") and len(path) == 1:
        if leaf not in node:
            raise unknown_name(f"--set key for {section.replace('_params', '')}", leaf, node)
        value = _coerce(key, value, node[leaf])
    node[leaf] = value


def resolve_config(task: str | TaskSpec, method: str, overrides: list[tuple[str, Any]] = ()) -> dict[str, Any]:
    """The fully resolved configuration of a (task, method) pair, without seed."""
    spec = load_task(task) if isinstance(task, str) else task
    config: dict[str, Any] = {
        "task": spec.name,
        "task_version": spec.version,
        "method": method,
        "method_params": method_defaults(method),
        "train": spec.train.model_dump(),
        "data": copy.deepcopy(dict(spec.adapter_args)),
        "encoders": copy.deepcopy(dict(spec.encoders)),
        "evaluation": spec.evaluation.model_dump(),
        "validation": spec.validation.model_dump(),
    }
    for key, value in overrides:
        apply_override(config, key, value)
    for section, model in (("train", TrainConfig), ("evaluation", EvaluationConfig)):
        try:
            config[section] = model.model_validate(config[section]).model_dump()
        except ValidationError as exc:
            err = exc.errors()[0]
            raise BenchError(f"--set {section}.{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    try:
        config["validation"] = ValidationSpec.model_validate(config["validation"]).model_dump()
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BenchError(f"validation.{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    check_regimes(spec, config)
    check_score(method, method_scores(method), config["method_params"])
    evaluation = EvaluationConfig.model_validate(config["evaluation"])
    check_modality_counts(spec, method, evaluation)
    if config["train"]["warm_start"] is not None:
        check_modality_counts(spec, config["train"]["warm_start"]["objective"], evaluation, "warm-start objective")
    return config


def check_modality_counts(spec: TaskSpec, method: str, evaluation: EvaluationConfig, role: str = "method") -> None:
    """Refuse, before training, a task with a tuple (training batch, direction) whose modality count the method's
    `modality_counts` excludes: one line naming the tuples, the supported counts and what to do."""
    low, high = counts = method_modality_counts(method)
    bad = {label: mods for label, mods in scored_tuples(spec, evaluation).items()
           if not low <= len(mods) <= (high or len(mods))}
    if not bad:
        return
    listed = ", ".join(f"{label} ({'+'.join(mods)}: {len(mods)})" for label, mods in bad.items())
    fix = (f"turn evaluation.robustness.missing off or choose another {role}"
           if all(" without " in label for label in bad) else
           f"choose another {role}, or a task (a task file may `include:` this one and list its own `retrieval:`) "
           f"whose tuples all have {counts_text(counts)} modalities")
    raise BenchError(f"{role} {method!r} scores tuples of {counts_text(counts)} modalities (modality_counts {counts}); "
                     f"task {spec.name!r} has {listed}; {fix}")


def check_regimes(spec: TaskSpec, config: dict[str, Any]) -> None:
    """Refuse, before training, a warm start that is not a registered method or is as long as training, and a
    robustness setting the task cannot evaluate (one line naming the valid choices)."""
    warm = config["train"]["warm_start"]
    if warm is not None:
        if warm["objective"] not in method_names():
            raise BenchError(
                f"--set train.warm_start.objective={warm['objective']}: not a registered method; "
                f"choose one of {', '.join(sorted(method_names()))}"
            )
        if warm["epochs"] >= config["train"]["epochs"]:
            raise BenchError(
                f"--set train.warm_start.epochs={warm['epochs']}: must be below train.epochs={config['train']['epochs']}"
                " (the method trains for the remaining epochs)"
            )
    try:
        check_evaluation(spec, EvaluationConfig.model_validate(config["evaluation"]))
    except ValueError as exc:
        raise BenchError(f"--set evaluation.{exc}") from None


def config_label(spec: TaskSpec, method: str, config: dict[str, Any]) -> str:
    """The settings that differ from the method's and the task's defaults ('tau1=0.5, tau2=0.03'; '' = defaults)."""
    base = resolve_config(spec, method)
    parts = [f"{k}={v}" for k, v in config["method_params"].items() if v != base["method_params"].get(k)]
    for section, prefix in (("train", ""), ("validation", "validation."), ("data", "data.")):
        parts += [
            f"{prefix}{k}={v}" for k, v in config[section].items()
            if v != base[section].get(k) and k not in NON_IDENTITY_TRAIN_KEYS | NON_IDENTITY_DATA_KEYS
        ]
    return ", ".join(parts)


def identity(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a config that determines the outcome (locations and batch sizes of encoders left out).

    Built without copying the nested values it keeps (it is only hashed), so planning 1,000 runs stays fast.
    Optional blocks that are off (train.warm_start, evaluation) are left out, so their ids predate them.
    """
    ident = {**config, "data": {k: v for k, v in config["data"].items() if k not in NON_IDENTITY_DATA_KEYS}}
    if "encoders" in config:
        ident["encoders"] = {
            name: {k: v for k, v in enc.items() if k not in NON_IDENTITY_ENCODER_KEYS} if isinstance(enc, dict) else enc
            for name, enc in config["encoders"].items()
        }
    if "train" in config:
        ident["train"] = {
            k: v for k, v in config["train"].items()
            if k not in NON_IDENTITY_TRAIN_KEYS and not (k == "warm_start" and v is None)
        }
    if "evaluation" in config and all(v is None for v in config["evaluation"].values()):
        del ident["evaluation"]
    return ident


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def config_hash(config: dict[str, Any]) -> str:
    """Hash of the outcome-determining config without the seed (one leaderboard entity)."""
    ident = identity(config)
    ident.pop("seed", None)
    return _digest(ident)


def run_id(config: dict[str, Any], seed: int) -> str:
    """Hash of the outcome-determining config including the seed (one result file)."""
    return _digest({**identity(config), "seed": int(seed)})
