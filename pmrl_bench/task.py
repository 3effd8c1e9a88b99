"""Task files (tasks/*.yaml): parsed into frozen, validated specs that refuse unknown keys."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pmrl_bench import plugins
from pmrl_bench.errors import BenchError, unknown_name
from pmrl_bench.metrics import (
    CORRECT,
    DEFAULT_RETRIEVAL_METRICS,
    RANK,
    metric_def,
    require_metric,
    split_metric,
)
from pmrl_bench.paths import TASKS_DIR, require_dir
from pmrl_bench.registry import TASKS, Entry
from pmrl_bench.safeio import read_yaml_file

DEFAULT_TASK = "synthetic"
ModalityType = Literal["text", "image", "video", "audio", "features"]
MODALITY_TYPES: tuple[str, ...] = ("text", "image", "video", "audio", "features")


def infer_modality_type(name: str) -> str:
    """The type of a modality listed without one: its name when that is a type, else `features`."""
    return name if name in MODALITY_TYPES else "features"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


MAX_WIDTH = 2**16  # embed_dim and head_hidden: wider heads do not fit in memory anyway


class WarmStart(_Strict):
    """A shared warm-start phase: `epochs` of `objective` (a registered method, defaults) at `lr`, before the method."""

    objective: str = "clip"
    epochs: int = Field(5, ge=1)
    lr: float = Field(1e-3, gt=0)


class TrainConfig(_Strict):
    """Training of the shared heads and the method's own parameters (finite numbers only)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    epochs: int = Field(20, ge=1, le=10**6)
    batch_size: int = Field(256, ge=2, le=2**24)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    embed_dim: int = Field(64, ge=1, le=MAX_WIDTH)
    head_hidden: int = Field(256, ge=1, le=MAX_WIDTH)
    head_layers: int = Field(2, ge=1, le=64)
    dropout: float = Field(0.0, ge=0, lt=1)
    max_steps: int | None = Field(None, ge=1, description="stop after this many steps (smoke runs)")
    select: Literal["best_val", "last"] = Field(
        "best_val", description="test the epoch with the best validation primary metric (ties: earlier), or the last"
    )
    curve_subset: int = Field(512, ge=2, description="train items whose cross-modal cosines the curve reports")
    warm_start: WarmStart | None = Field(None, description="shared warm-start phase (pre-aligned regime); off by default")

    @field_validator("warm_start", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        return switch(value)


def switch(value: Any) -> Any:
    """`true` turns an optional block on with its defaults, `false` off; a mapping is kept."""
    if value is True:
        return {}
    return None if value is False else value


class Rerank(_Strict):
    """The shared re-ranker: one matching head and training budget for every method, re-ranking the top k."""

    k: int = Field(50, ge=1, description="first-stage candidates re-ranked per query")
    epochs: int = Field(20, ge=1)
    lr: float = Field(1e-3, gt=0)
    hidden: int = Field(256, ge=1)
    batch_size: int = Field(256, ge=2)
    negatives: int = Field(3, ge=1, description="hard negatives per positive, mined by the method's similarity")


class Robustness(_Strict):
    """Evaluation-time corruption of one modality: Gaussian noise at each level (x each feature's std), and missing."""

    modality: str
    levels: list[Annotated[float, Field(ge=0)]] = [0.5, 1.0, 2.0]
    missing: bool = True


class EvaluationConfig(_Strict):
    """Optional evaluation stages beyond first-stage retrieval (all off by default)."""

    rerank: Rerank | None = None
    robustness: Robustness | None = None

    @field_validator("rerank", "robustness", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        return switch(value)


class ValidationSpec(_Strict):
    """Where a task's validation split comes from: the dataset's own split, else a grouped fraction of train."""

    split: str | None = Field(None, description="the adapter's own validation split; None: carve it out of train")
    fraction: float = Field(0.1, gt=0, le=0.5, description="share of train items (groups) carved out as validation")
    seed: int = Field(0, ge=0, description="seed of the carve")


class RetrievalDirection(_Strict):
    """One retrieval direction: its metric prefix, the query modality and the candidate modalities."""

    name: str
    query: list[str]
    candidates: list[str]


class SelectOn(_Strict):
    """A retrieval direction scored on the validation items that selects the epoch in place of the primary metric."""

    direction: RetrievalDirection
    metric: str = "R@1"
    why: str = Field("", description="why the primary metric is not used (recorded in protocol.select)")


class ClassificationSpec(_Strict):
    """One classification protocol: the modality that is classified and how."""

    name: str
    input: str
    mode: Literal["linear_probe", "zero_shot"]
    prompt: str = "{label}"
    prompt_modality: str = "text"


class QASpec(_Strict):
    """One question-answering protocol: the media modalities a question is about and how it is answered.

    `multiple_choice`: zero-shot, the method's similarity of each candidate against the media tuple; the
    candidates are texts (the question prepended when `prepend_question`) or, with `candidates: <modality>`,
    items of the same split seen through that modality (e.g. "which of two pictures does this recording
    describe"). `open_ended`: a head over the `top_k` most frequent training answers on fused frozen
    embeddings; it also reports the baselines `<name>_prior` and `<name>_qonly`. A protocol answers the
    questions of its `qtypes` (empty: every question of the split).
    """

    name: str
    mode: Literal["multiple_choice", "open_ended"]
    media: list[str]
    prepend_question: bool = False
    top_k: int = Field(1000, ge=1)
    candidates: str = Field("text", description="multiple choice: `text`, or the modality of candidate items")
    qtypes: list[str] = Field([], description="the question types this protocol answers; empty: all")

    def answers(self, qtype: str) -> bool:
        """Whether this protocol answers questions of type `qtype`."""
        return not self.qtypes or qtype in self.qtypes

    @property
    def prefixes(self) -> list[str]:
        """Metric prefixes this protocol writes (the open-ended baselines after the head)."""
        return [self.name, f"{self.name}_prior", f"{self.name}_qonly"] if self.mode == "open_ended" else [self.name]


class TaskSpec(_Strict):
    """A benchmark task: data, modalities, what is evaluated and the training defaults."""

    name: str
    version: int = Field(ge=1, description="bump whenever a change alters scores")
    kind: Literal["retrieval", "classification", "qa"]
    description: str = ""
    modalities: list[str]
    modality_types: dict[str, ModalityType] = Field(
        {}, description="modality -> type; filled in from `modalities: {name: type}` or inferred from the names")
    adapter: str
    adapter_args: dict[str, Any] = {}
    splits: dict[str, str] = {"train": "train", "test": "test"}
    validation: ValidationSpec = ValidationSpec()
    folds: list[int] = Field(
        [], description="cross-validation folds: one run trains and tests once per fold (adapter argument `fold`), "
        "pooling the per-query outcomes (classification tasks)")
    caption_policy: dict[str, Literal["all", "first", "paragraph"]] = {"train": "all", "test": "all"}
    encoders: dict[str, dict[str, Any]] = {}
    retrieval: list[RetrievalDirection] = []
    classification: list[ClassificationSpec] = []
    qa: list[QASpec] = []
    metrics: list[str] = list(DEFAULT_RETRIEVAL_METRICS)
    primary_metric: str
    select_on: SelectOn | None = Field(
        None, description="validation metric for best-epoch selection when the primary metric comes from a fitted "
                          "head (linear probe, open-ended QA), whose L2 is itself chosen on validation")
    query_group: str | None = None
    train: TrainConfig = TrainConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    source: str = ""
    citation: str = ""
    license: str = ""

    @model_validator(mode="before")
    @classmethod
    def _typed_modalities(cls, data: Any) -> Any:
        """`modalities: {name: type}` or a plain list (types inferred from the names); explicit types win."""
        if not isinstance(data, dict):
            return data
        mods = data.get("modalities")
        declared = dict(mods) if isinstance(mods, dict) else {}
        names = list(mods) if isinstance(mods, dict | list) else mods
        if isinstance(names, list):
            inferred = {n: infer_modality_type(n) for n in names if isinstance(n, str)}
            data = {**data, "modalities": names,
                    "modality_types": {**inferred, **declared, **dict(data.get("modality_types") or {})}}
        return data

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, names: list[str]) -> list[str]:
        for name in names:
            try:
                require_metric(name)
            except BenchError as exc:
                raise ValueError(str(exc)) from None
        return names

    @model_validator(mode="after")
    def _check(self) -> TaskSpec:
        mods = set(self.modalities)
        if set(self.modality_types) != mods:
            raise ValueError(f"modality_types names {sorted(self.modality_types)}, not the modalities {self.modalities}")
        for d in self.retrieval:
            for m in [*d.query, *d.candidates]:
                if m not in mods:
                    raise ValueError(f"retrieval {d.name!r} uses modality {m!r} not in modalities {self.modalities}")
        for c in self.classification:
            if c.input not in mods:
                raise ValueError(f"classification {c.name!r} uses modality {c.input!r} not in modalities")
        for q in self.qa:
            if not q.media or any(m not in mods for m in q.media) or "text" not in mods:
                raise ValueError(f"qa {q.name!r} needs media modalities and `text`, all in modalities {self.modalities}")
            if q.candidates != "text" and (q.mode != "multiple_choice" or q.candidates not in mods):
                raise ValueError(f"qa {q.name!r}: `candidates: {q.candidates}` needs multiple_choice and a modality "
                                 f"of {self.modalities}")
        if len(self.qa) > 1 and any(not q.qtypes for q in self.qa):
            raise ValueError("a task with several qa protocols gives each its `qtypes`")
        if self.folds and (self.kind != "classification" or len(set(self.folds)) != len(self.folds)):
            raise ValueError("folds: distinct fold values, for a classification task (its adapter gives an `all` "
                             "split and takes the argument `fold`)")
        if self.kind == "qa" and not self.qa:
            raise ValueError("a qa task needs at least one entry under `qa`")
        if self.kind == "retrieval" and not self.retrieval:
            raise ValueError("a retrieval task needs at least one entry under `retrieval`")
        if self.kind == "classification" and not self.classification:
            raise ValueError("a classification task needs at least one entry under `classification`")
        check_evaluation(self, self.evaluation)
        self._check_metrics()
        self._check_selection()
        return self

    def _check_selection(self) -> None:
        """`select_on` uses the task's modalities and a rank metric; a fitted-head primary metric needs it."""
        if self.select_on is not None:
            d = self.select_on.direction
            if any(m not in self.modalities for m in [*d.query, *d.candidates]):
                raise ValueError(f"select_on {d.name!r} uses a modality not in modalities {self.modalities}")
            mdef = metric_def(self.select_on.metric)
            if mdef is None or mdef.outcome != RANK:
                raise ValueError(f"select_on metric {self.select_on.metric!r} is not a retrieval (rank) metric")
            return
        prefix = split_metric(self.primary_metric)[0]
        fitted = [c.name for c in self.classification if c.mode == "linear_probe"]
        fitted += [p for q in self.qa if q.mode == "open_ended" for p in q.prefixes]
        if prefix in fitted:
            raise ValueError(f"primary_metric {self.primary_metric!r} comes from a head whose L2 is chosen on "
                             "validation, so it cannot select epochs on validation: add `select_on` (a retrieval "
                             "direction scored on the validation items) or make a zero-shot protocol primary")

    @property
    def selection_metric(self) -> str:
        """The validation metric that selects the epoch: `select_on`'s direction/metric, else the primary metric."""
        if self.select_on is None:
            return self.primary_metric
        return f"{self.select_on.direction.name}/{self.select_on.metric}"

    def _check_metrics(self) -> None:
        """Every metric name is in the registry and applies to some prefix; the primary metric is one of them."""
        outcomes = {RANK} if self.retrieval else set()
        outcomes |= {CORRECT} if self.classification or self.qa else set()
        for name in self.metrics:
            mdef = require_metric(name)
            if mdef.outcome not in outcomes:
                raise ValueError(f"metric {name!r} needs '{mdef.outcome}' outcomes, which no direction or protocol "
                                 "of this task produces")
        prefix, name = split_metric(self.primary_metric)
        if prefix not in self.prefixes:
            raise ValueError(f"primary_metric {self.primary_metric!r} does not start with one of {self.prefixes}")
        if name not in self.metrics:
            raise ValueError(f"primary_metric {self.primary_metric!r}: {name!r} is not among metrics {self.metrics}")
        kind = RANK if prefix in {d.name for d in self.retrieval} else CORRECT
        if metric_def(name).outcome != kind:  # type: ignore[union-attr]
            raise ValueError(f"primary_metric {self.primary_metric!r}: {name!r} does not apply to '{kind}' outcomes")

    @property
    def prefixes(self) -> list[str]:
        """Metric prefixes in order: retrieval directions, classification protocols, then QA protocols."""
        return [d.name for d in self.retrieval] + [c.name for c in self.classification] + [
            p for q in self.qa for p in q.prefixes]

    @property
    def text_modalities(self) -> list[str]:
        """Modalities of type `text` (encoded from the items' texts, with the caption policy), in order."""
        return [m for m in self.modalities if self.modality_types[m] == "text"]

    def meta(self) -> dict[str, Any]:
        """What a result record carries about its task (RunResult.task_meta)."""
        directions = {m: "higher" if metric_def(m).higher_is_better else "lower" for m in self.metrics}  # type: ignore[union-attr]
        return {"version": self.version, "primary_metric": self.primary_metric, "metrics": list(self.metrics),
                "prefixes": self.prefixes, "directions": directions, "query_group": self.query_group}


def check_evaluation(spec: TaskSpec, evaluation: EvaluationConfig) -> None:
    """Refuse a corrupted modality the task lacks, or a missing modality that is a query (ValueError)."""
    rob = evaluation.robustness
    if rob is None:
        return
    if rob.modality not in spec.modalities:
        raise ValueError(f"robustness modality {rob.modality!r} is not one of {spec.modalities}")
    queries = sorted({q for d in spec.retrieval for q in d.query})
    if rob.missing and rob.modality in queries:
        raise ValueError(
            f"robustness missing={rob.modality!r} is a query modality; choose a candidate-only modality "
            f"({sorted(set(spec.modalities) - set(queries))}) or set missing=false"
        )


def missing_candidates(direction: RetrievalDirection, missing: str) -> list[str]:
    """The candidates a direction is ranked with when `missing` is absent ([] when that leaves none or changes nothing)."""
    kept = [m for m in direction.candidates if m != missing]
    return kept if kept and len(kept) < len(direction.candidates) else []


def scored_tuples(spec: TaskSpec, evaluation: EvaluationConfig) -> dict[str, list[str]]:
    """Every tuple of modalities a method is given on this task, by label: the training batch (all modalities),
    then each query plus candidates it scores (retrieval directions and their missing-modality variants,
    zero-shot classification, multiple-choice QA). `Method.modality_counts` must hold for each."""
    out = {"training": list(spec.modalities)}
    rob = evaluation.robustness
    for d in spec.retrieval:
        out[d.name] = [*d.query, *d.candidates]
        kept = missing_candidates(d, rob.modality) if rob is not None and rob.missing else []
        if kept:
            out[f"{d.name} without {rob.modality}"] = [*d.query, *kept]  # type: ignore[union-attr]
    for c in spec.classification:
        if c.mode == "zero_shot":
            out[c.name] = [c.input, c.prompt_modality]
    for q in spec.qa:
        if q.mode == "multiple_choice":
            out[q.name] = ["text", *q.media]
    return out


def task_files() -> dict[str, Path]:
    """Task name -> YAML file, for every tasks/*.yaml of the built-in folder and of the plug-in folders."""
    table: dict[str, Path] = {}
    for directory in (require_dir(TASKS_DIR), *plugins.folder_dirs("task")):
        for path in sorted(directory.glob("*.yaml")):
            if path.stem in table:
                raise BenchError(f"duplicate task name {path.stem!r}: defined in {table[path.stem]} and {path}")
            table[path.stem] = path
    return table


def task_entries() -> dict[str, Entry]:
    """Tasks defined in files and entry points (group `pmrl_bench.tasks`), by name; nothing is loaded."""
    table = {name: Entry(name, "", path=path) for name, path in task_files().items()}
    for name, ep in plugins.entry_points("task").items():
        if name in table:
            raise BenchError(f"duplicate task name {name!r}: defined in {table[name].where} and {plugins.describe(ep)}")
        table[name] = Entry(name, "", entry_point=ep)
    return table


def task_names() -> dict[str, str]:
    """Every task name (files, entry points, in-process registrations) with where it is defined."""
    plugins.import_includes()
    table = {name: entry.where for name, entry in task_entries().items()}
    for name, obj in TASKS.items():
        table.setdefault(name, f"registered in {getattr(obj, '__module__', 'this process')}")
    return table


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a task YAML, resolving `include: other.yaml` deeply (the including file's keys win; its name is not inherited)."""
    if path in seen:
        raise BenchError(f"{path}: include cycle through {', '.join(str(p) for p in seen)}")
    data = read_yaml_file(path, "task file") or {}
    if not isinstance(data, dict):
        raise BenchError(f"{path}: a task file must be a mapping of keys")
    include = data.pop("include", None)
    if include is not None:
        if not isinstance(include, str) or not include:
            raise BenchError(f"{path}: include: expected the name of another task file, got {include!r}")
        base = _read_yaml(path.parent / include, (*seen, path))
        base.pop("name", None)  # a task never inherits the name of the file it includes
        data = deep_merge(base, data)
    return data


def deep_merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """`child` over `base`: mappings merge key by key at every depth; lists and scalars replace."""
    out = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def validate_task(data: dict[str, Any], where: str) -> TaskSpec:
    """A validated TaskSpec from task keys; errors name `where` and the offending key."""
    try:
        return TaskSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise BenchError(f"{where}: {key}: {err['msg'].removeprefix('Value error, ')}") from None


def parse_task_file(path: Path, name: str | None = None) -> TaskSpec:
    """Parse and validate one task file (its name: `name:` in the file, else `name`, else the file's stem)."""
    data = _read_yaml(path)
    data.setdefault("name", name or path.stem)
    return validate_task(data, str(path))


def _task_from_object(obj: Any, name: str, where: str) -> TaskSpec:
    """A task from an in-process registration or an entry point: a YAML path, a mapping, or a function giving one."""
    if callable(obj):
        obj = obj()
    if isinstance(obj, str | Path):
        return parse_task_file(Path(obj), name)
    if not isinstance(obj, Mapping):
        raise BenchError(f"{where}: a task is a mapping of task keys or a YAML path, got {type(obj).__name__}")
    return validate_task({"name": name, **obj}, where)


@cache
def load_task(name: str) -> TaskSpec:
    """The task called `name`: a task file, an entry point or an in-process registration."""
    plugins.import_includes()
    entries = task_entries()
    if name in entries:
        entry = entries[name]
        if entry.path is not None:
            return parse_task_file(entry.path)
        assert entry.entry_point is not None
        return _task_from_object(plugins.load_entry_point(entry.entry_point), name, entry.where)
    if name in TASKS:
        return _task_from_object(TASKS[name], name, f"task {name!r} registered in-process")
    raise unknown_name("task", name, set(entries) | set(TASKS), "(see `python -m pmrl_bench list tasks`)")
