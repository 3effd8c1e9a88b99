"""Result files loaded into a validated table of runs, grouped into entities and per-prefix scopes."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from pmrl_bench.errors import BenchError, unknown_name
from pmrl_bench.metrics import (
    GROUP,
    OUTCOME_KINDS,
    RANK,
    dense_groups,
    metric_def,
    metric_sort_key,
    run_metric,
    split_metric,
)
from pmrl_bench.results.labels import (
    AD_HOC,
    DEFAULT,
    TUNED,
    changed_keys,
    derive_label,
    known_defaults,
    regime_label,
    with_regime,
)
from pmrl_bench.results.record import SCHEMA_VERSION, RunResult, TaskMeta
from pmrl_bench.safeio import UnsafeFile, read_bytes

METRIC_TOL = 1e-6
_DIGEST = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Run:
    """One valid result file: identity, status and per-query outcomes as arrays."""

    path: Path
    task: str
    method: str
    config_hash: str
    seed: int
    status: str
    error: str | None
    metrics: dict[str, float]
    outcomes: dict[str, tuple[str, np.ndarray]]  # prefix -> (rank|correct, int64 [Nq])
    groups: dict[str, np.ndarray]  # prefix -> group label per query, when recorded
    eval_set: dict[str, str]
    n_candidates: dict[str, int]
    task_meta: TaskMeta | None = None
    limited: bool = False
    method_params: dict[str, Any] = field(default_factory=dict)
    config_label: str | None = None  # as recorded (issue 10); None: derived from method_params
    selection: dict[str, Any] | None = None  # validation-selected configuration (issue 10)
    train_curve: list[dict[str, Any]] = field(default_factory=list)
    regime: str = ""  # evaluation regime, e.g. 'rerank@50' (as recorded, else derived from config.evaluation)
    warm_outcomes: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict)  # the model after the warm start

    @property
    def ok(self) -> bool:
        """Status ok."""
        return self.status == "ok"


@dataclass(frozen=True)
class Problem:
    """A file that is not a valid result record, and why."""

    path: Path
    reason: str


@dataclass
class RunTable:
    """Every result file under a folder: valid runs (sorted) and bad files with reasons."""

    runs: list[Run] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    n_files: int = 0
    n_limited: int = 0  # valid --limit records, kept out of the table

    def tasks(self) -> list[str]:
        """Task names with at least one valid run, sorted."""
        return sorted({r.task for r in self.runs})


def result_files(root: Path) -> Iterator[Path]:
    """Every *.json under root (or root itself if it is a file), sorted; hidden files and folders skipped."""
    root = Path(root)
    if root.is_file():
        yield root
        return
    yield from sorted(p for p in _walk(root) if p.suffix == ".json" and not p.is_dir())


def _walk(root: Path) -> Iterator[Path]:
    """Non-hidden entries under root without following symlinked folders (which are yielded themselves)."""
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in [*dirs, *files]:
            path = Path(folder) / name
            if not name.startswith(".") and (name in files or path.is_symlink()):
                yield path


def symlinked_folders(root: Path) -> list[Path]:
    """Symlinked folders under root: not followed (a record belongs where its path says), so reported."""
    return sorted(p for p in _walk(Path(root)) if p.is_symlink() and p.is_dir()) if Path(root).is_dir() else []


def _schema_reason(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where + ': ' if where else ''}{err['msg']}{more}"


def _gallery_sizes(protocol: dict[str, Any]) -> dict[str, int]:
    """prefix -> number of candidates, from protocol[prefix]['n_candidates'] where recorded."""
    out = {}
    for prefix, entry in protocol.items():
        if isinstance(entry, dict) and isinstance(entry.get("n_candidates"), int):
            out[prefix] = entry["n_candidates"]
    return out


def _outcome_reasons(rec: RunResult) -> list[str]:
    """Per-query keys, lengths and ranges of an ok record."""
    if not rec.per_query:
        return ["status ok but no per_query outcomes"]
    reasons, kinds, lengths = [], Counter(), {}
    gallery = _gallery_sizes(rec.protocol)
    for key, values in rec.per_query.items():
        prefix, kind = split_metric(key)
        if not prefix or kind not in (*OUTCOME_KINDS, GROUP):
            reasons.append(f"per_query key {key!r} is not '<prefix>/rank', '<prefix>/correct' or '<prefix>/group'")
            continue
        x = np.asarray(values, dtype=np.int64)
        if x.size == 0:
            reasons.append(f"per_query {key!r} is empty")
            continue
        if kind == RANK and (x.min() < 1 or (prefix in gallery and x.max() > gallery[prefix])):
            reasons.append(f"per_query {key!r}: ranks must lie in [1, {gallery.get(prefix, 'n_candidates')}]")
        elif kind == "correct" and not np.isin(x, (0, 1)).all():
            reasons.append(f"per_query {key!r}: correctness must be 0 or 1")
        elif kind == GROUP and x.min() < 0:
            reasons.append(f"per_query {key!r}: group ids must be >= 0")
        if kind != GROUP:
            kinds[prefix] += 1
        lengths.setdefault(prefix, set()).add(len(x))
    reasons += [f"prefix {p!r} has both rank and correct outcomes" for p, c in kinds.items() if c > 1]
    reasons += [f"per_query vectors of prefix {p!r} differ in length {sorted(n)}" for p, n in lengths.items() if len(n) > 1]
    reasons += [f"per_query {p!r}/group without outcomes" for p in lengths if p not in kinds]
    for prefix, entry in rec.protocol.items():
        n_q = entry.get("n_queries") if isinstance(entry, dict) else None
        if prefix in kinds and isinstance(n_q, int) and lengths[prefix] != {n_q}:
            reasons.append(f"protocol {prefix}.n_queries = {n_q} but per_query has {sorted(lengths[prefix])[0]}")
    return reasons


def warm_per_query(protocol: dict[str, Any]) -> dict[str, Any]:
    """The per-query outcomes ('<prefix>/rank|correct') of the model right after the warm start ({} when none are
    recorded); its '<prefix>/group' keys repeat the run's own and are left out."""
    warm = protocol.get("warm_start")
    found = warm.get("per_query") if isinstance(warm, dict) else None
    return {k: v for k, v in found.items() if split_metric(k)[1] != GROUP} if isinstance(found, dict) else {}


def _warm_reasons(rec: RunResult) -> list[str]:
    """The warm start's per-query outcomes pair with the run's own: same keys' lengths, same eval sets, valid values."""
    reasons = []
    warm = warm_per_query(rec.protocol)
    warm_sets = rec.protocol["warm_start"].get("eval_set", {}) if warm else {}
    for key, values in warm.items():
        prefix, kind = split_metric(key)
        own = rec.per_query.get(key)
        if kind not in OUTCOME_KINDS or own is None:
            reasons.append(f"protocol.warm_start.per_query {key!r} has no outcomes of the run to pair with")
            continue
        x = np.asarray(values, dtype=np.int64) if isinstance(values, list) else np.zeros(0, np.int64)
        if len(x) != len(own) or not isinstance(warm_sets, dict) or warm_sets.get(prefix) != rec.eval_set.get(prefix):
            reasons.append(f"protocol.warm_start.per_query {key!r}: not on the run's eval set (length or digest)")
        elif (kind == RANK and x.size and x.min() < 1) or (kind == "correct" and not np.isin(x, (0, 1)).all()):
            reasons.append(f"protocol.warm_start.per_query {key!r}: values out of range")
    return reasons


def _metric_reasons(rec: RunResult) -> list[str]:
    """Stored metrics recomputed from per_query (docs/statistics.md 1.2)."""
    reasons, arrays = [], {}  # each outcome vector converted once, not once per metric
    for key, stored in rec.metrics.items():
        prefix, name = split_metric(key)
        mdef = metric_def(name)
        outcome = next((k for k in OUTCOME_KINDS if f"{prefix}/{k}" in rec.per_query), None)
        if not np.isfinite(stored):
            reasons.append(f"metric {key!r} is not finite")
        elif mdef is None:
            reasons.append(f"metric {key!r} is not a known metric (R@K, MRR, MnR, MdR, acc)")
        elif outcome is None:
            reasons.append(f"metric {key!r} has no per-query outcomes")
        elif outcome != mdef.outcome:
            reasons.append(f"metric {key!r} does not apply to '{outcome}' outcomes")
        else:
            name = f"{prefix}/{outcome}"
            if name not in arrays:
                arrays[name] = np.asarray(rec.per_query[name])
            value = float(run_metric(mdef, arrays[name]))
            if not abs(value - stored) <= METRIC_TOL:
                reasons.append(f"metric {key!r} = {stored!r} but per_query gives {value!r}")
    return reasons


def check_record(rec: RunResult, path: Path | None = None) -> list[str]:
    """Why a parsed record is invalid beyond its schema (empty list: valid)."""
    reasons = []
    if not 1 <= rec.schema_version <= SCHEMA_VERSION:  # older layouts stay valid: fields are only ever added
        reasons.append(f"schema_version {rec.schema_version} is not in 1..{SCHEMA_VERSION}")
    if path is not None and (path.parent.parent.name, path.parent.name, path.stem) != (rec.task, rec.method, rec.run_id):
        reasons.append(f"path does not match the record (expected .../{rec.task}/{rec.method}/{rec.run_id}.json)")
    if rec.status == "failed":
        if not rec.error:
            reasons.append("status failed without an error message")
        return reasons
    if rec.task_meta is not None:
        reasons += [f"task_meta.directions[{m!r}] = {d!r} disagrees with the metric registry"
                    for m, d in rec.task_meta.directions.items()
                    if (mdef := metric_def(m)) is None or (d == "higher") != mdef.higher_is_better]
    reasons += _outcome_reasons(rec) + _warm_reasons(rec)
    if not reasons:
        reasons += _metric_reasons(rec)
    for prefix, digest in rec.eval_set.items():
        if not _DIGEST.fullmatch(digest):
            reasons.append(f"eval_set {prefix!r} is not a sha256 hex digest")
        elif not any(f"{prefix}/{k}" in rec.per_query for k in OUTCOME_KINDS):
            reasons.append(f"eval_set {prefix!r} has no per-query outcomes")
    return reasons


def _to_run(rec: RunResult, path: Path) -> Run:
    outcomes, groups = {}, {}
    for key, values in rec.per_query.items():
        prefix, kind = split_metric(key)
        target = groups if kind == GROUP else outcomes
        arr = np.asarray(values, dtype=np.int64)
        target[prefix] = arr if kind == GROUP else (kind, arr)
    params = rec.config.get("method_params")
    regime = rec.regime if rec.regime is not None else regime_label(rec.config.get("evaluation"))
    warm = {split_metric(k)[0]: (split_metric(k)[1], np.asarray(v, dtype=np.int64))
            for k, v in warm_per_query(rec.protocol).items()}
    return Run(path, rec.task, rec.method, rec.config_hash, rec.seed, rec.status, rec.error, dict(rec.metrics),
               outcomes, groups, dict(rec.eval_set), _gallery_sizes(rec.protocol), rec.task_meta, rec.limited,
               dict(params) if isinstance(params, dict) else {}, getattr(rec, "config_label", None),
               getattr(rec, "selection", None), list(getattr(rec, "train_curve", None) or []), regime, warm)


def read_run(path: Path) -> Run | Problem:
    """One file as a valid Run, or the Problem that makes it invalid."""
    try:
        text = read_bytes(path)
    except UnsafeFile as exc:
        return Problem(path, str(exc).removeprefix(f"{path}: "))
    except OSError as exc:
        return Problem(path, f"unreadable ({exc.__class__.__name__}: {exc})")
    try:
        rec = RunResult.model_validate_json(text)
    except ValidationError as exc:
        return Problem(path, _schema_reason(exc))
    try:
        reasons = check_record(rec, path)
    except (OverflowError, ValueError) as exc:  # e.g. an integer outside int64 in per_query
        return Problem(path, f"per_query values out of range ({exc})")
    return Problem(path, "; ".join(reasons)) if reasons else _to_run(rec, path)


def load_runs(root: Path) -> RunTable:
    """Read and check every result file under root; duplicate seeds of one entity are both invalid."""
    table = RunTable()
    table.problems += [Problem(p, "symlinked folder, not followed; move the records into the results folder")
                       for p in symlinked_folders(root)]
    for path in result_files(root):
        table.n_files += 1
        item = read_run(path)
        if isinstance(item, Run) and item.limited:
            table.n_limited += 1
            continue
        (table.problems if isinstance(item, Problem) else table.runs).append(item)
    by_seed: dict[tuple, list[Run]] = {}
    for run in table.runs:
        if run.ok:
            by_seed.setdefault((run.task, run.method, run.config_hash, run.seed), []).append(run)
    dupes = {id(r): runs for runs in by_seed.values() if len(runs) > 1 for r in runs}
    for run in table.runs:
        if id(run) in dupes:
            others = ", ".join(str(o.path) for o in dupes[id(run)] if o is not run)
            table.problems.append(Problem(run.path, f"duplicate seed {run.seed} of {run.method}@{run.config_hash} "
                                                     f"on {run.task} (also {others})"))
    table.runs = sorted((r for r in table.runs if id(r) not in dupes),
                        key=lambda r: (r.task, r.method, r.config_hash, r.seed, str(r.path)))
    table.problems.sort(key=lambda p: str(p.path))
    return table


# --- entities of a task -------------------------------------------------------------------------


@dataclass(frozen=True)
class Entity:
    """(method, config_hash) on one task with all its valid runs, ordered by seed."""

    method: str
    config_hash: str
    label: str
    runs: tuple[Run, ...]
    kind: str = DEFAULT  # tuned | default | ad hoc (issue 10.5)
    config_label: str = ""  # the parameters that differ from the method's defaults
    regime: str = ""  # the evaluation regime ('' = plain retrieval), e.g. 'rerank@50, robustness vision'

    @property
    def key(self) -> str:
        """Stream key '<method>@<config_hash>' (docs/statistics.md 3.1)."""
        return f"{self.method}@{self.config_hash}"

    @property
    def failed(self) -> list[Run]:
        """Failed runs."""
        return [r for r in self.runs if not r.ok]

    @property
    def kind_text(self) -> str:
        """Kind and evaluation regime, e.g. 'tuned, rerank@50' or 'default'."""
        return with_regime(self.kind, self.regime)

    @property
    def name_text(self) -> str:
        """What names this configuration beside its method: the label (else the kind), then the regime."""
        return with_regime(self.config_label or self.kind, self.regime)

    @property
    def config_text(self) -> str:
        """Kind, regime and configuration label, e.g. 'tuned, rerank@50: tau1=0.5' or 'default'."""
        return f"{self.kind_text}: {self.config_label}" if self.config_label else self.kind_text


def parse_config_choices(pairs: Sequence[str]) -> dict[str, str]:
    """--config METHOD=CHOICE options -> {method: choice} (a config hash prefix, a label, 'tuned' or 'default')."""
    out = {}
    for pair in pairs:
        method, sep, choice = pair.partition("=")
        if not sep or not method or not choice:
            raise BenchError(f"--config {pair!r}: expected METHOD=HASH or METHOD=LABEL (e.g. pmrl=tau1=0.5)")
        out[method] = choice
    return out


def _matches(entity: Entity, choice: str) -> bool:
    """Whether a --config choice names this entity: hash prefix, configuration label, kind or kind and regime."""
    return entity.config_hash.startswith(choice) or choice in (entity.config_label, entity.kind, entity.kind_text,
                                                                entity.name_text)


def check_config_choices(runs: Sequence[Run], choices: dict[str, str]) -> None:
    """Every --config choice must name a configuration of its method on some task (close matches otherwise)."""
    for method, choice in choices.items():
        mine = [e for t in sorted({r.task for r in runs}) for e in task_entities(runs, t) if e.method == method]
        if not mine:
            raise unknown_name("method", method, {r.method for r in runs}, "(in --config)")
        if not any(_matches(e, choice) for e in mine):
            known = {e.config_hash[:8] for e in mine} | {e.config_label for e in mine if e.config_label} | {
                e.kind_text for e in mine}
            raise unknown_name(f"configuration of {method}", choice, sorted(known), "(in --config)")


def _entity_kind(runs: Sequence[Run], label: str) -> str:
    """tuned when a record carries `selection`, default when it matches the method's defaults, else ad hoc."""
    if any(r.selection for r in runs):
        return TUNED
    return DEFAULT if label == "" else AD_HOC


def task_entities(runs: Sequence[Run], task: str, choices: dict[str, str] | None = None) -> list[Entity]:
    """Entities of one task, labelled by configuration (never by hash alone), sorted by label."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        if run.task == task:
            groups.setdefault((run.method, run.config_hash), []).append(run)
    made = []
    for (method, digest), rs in groups.items():
        first = min(rs, key=lambda r: (r.seed, str(r.path)))
        label = first.config_label if first.config_label is not None else derive_label(method, first.method_params)
        made.append(Entity(method, digest, method, tuple(sorted(rs, key=lambda r: r.seed)), _entity_kind(rs, label),
                           label, first.regime))
    chosen = [e for e in made if _matches(e, (choices or {}).get(e.method, ""))]
    out = [replace(e, label=_display_label(e, chosen)) for e in chosen]
    return sorted(out, key=lambda e: (e.label, e.config_hash))


def _display_label(e: Entity, entities: Sequence[Entity]) -> str:
    """The method name for the method's rule-chosen entry, else 'method (label)'; hash added only on a clash."""
    mine = [o for o in entities if o.method == e.method]
    if len(mine) == 1 or e is entry_of(mine):
        return e.method
    text = f"{e.method} ({e.name_text})"
    clash = [o for o in mine if o.name_text == e.name_text]
    return f"{text} [{e.config_hash[:8]}]" if len(clash) > 1 else text


def fixed_overrides(e: Entity) -> int:
    """How many of an entity's method settings differ from the defaults outside what tuning chose
    (a tuned `imagebind --set anchor=text` has one: a variant of the method, not its entry)."""
    first = e.runs[0]
    chosen = (first.selection or {}).get("chosen") or {}
    return sum(k not in chosen for k in changed_keys(first.method_params, known_defaults(e.method)))


def entry_of(entities: Sequence[Entity]) -> Entity | None:
    """A method's entry (the protocol's rule): its tuned configuration, else its defaults, in the plain regime
    before any evaluation regime (re-ranker, robustness); a tuning of the method as declared (no fixed
    setting changed) before a tuned variant; None if neither."""
    for plain in (True, False):
        for kind in (TUNED, DEFAULT):
            found = sorted((e for e in entities if e.kind == kind and (e.regime == "") == plain),
                           key=lambda e: (fixed_overrides(e), -len(e.runs), e.config_hash))
            if found:
                return found[0]
    return None


# --- one scope: the runs of a (task, prefix) on one eval set --------------------------------------


@dataclass(frozen=True)
class Sample:
    """The runs of one entity used in a scope: seeds and outcomes [S, Nq]."""

    entity: Entity
    seeds: tuple[int, ...]
    outcomes: np.ndarray


@dataclass(frozen=True)
class Scope:
    """The successful runs on one (task, prefix) that share the reference eval set."""

    task: str
    prefix: str
    kind: str
    digest: str | None
    n_queries: int
    groups: np.ndarray | None  # dense group id per query when recorded
    reference: tuple  # (digest, N, grouping bytes) the runs share
    samples: dict[str, Sample]  # entity key -> sample (entities with >= 1 run)
    left_out: list[tuple[Run, str]]
    unverified: list[str]  # labels of entities with runs lacking eval_set

    @property
    def name(self) -> str:
        """Stream scope '<task>/<prefix>'."""
        return f"{self.task}/{self.prefix}"

    @property
    def n_units(self) -> int:
        """Independent units: query groups when recorded, else queries."""
        return self.n_queries if self.groups is None else int(self.groups.max()) + 1


def _identity(run: Run, prefix: str) -> tuple:
    """What must agree for two runs to be paired: digest, N and the query grouping."""
    groups = run.groups.get(prefix)
    return (run.eval_set.get(prefix), len(run.outcomes[prefix][1]), None if groups is None else groups.tobytes())


def reference_eval_set(runs: Sequence[Run], prefix: str) -> tuple:
    """The identity shared by most runs with a digest (ties: smallest digest); most common if none has one."""
    ids = Counter(_identity(r, prefix) for r in runs)
    with_digest = [i for i in ids if i[0] is not None] or list(ids)
    return min(with_digest, key=lambda i: (-ids[i], i[0] or "", i[1], i[2] or b""))


def _compatible(run: Run, prefix: str, ref: tuple, gallery: int | None) -> bool:
    """Same identity; a run without digest passes when N, grouping and gallery size match (unverified)."""
    ident = _identity(run, prefix)
    if ident[0] is not None:
        return ident == ref
    size = run.n_candidates.get(prefix)
    return ident[1:] == ref[1:] and (size is None or gallery is None or size == gallery)


def _difference(ident: tuple, ref: tuple) -> str:
    """Why a run is not on the reference eval set, in a few words."""
    if ident[0] is not None and ident[0] != ref[0]:
        return f"eval set {ident[0][:8]}"
    if ident[1] != ref[1]:
        return f"{ident[1]} queries, not {ref[1]}"
    return "other query groups" if ident[2] != ref[2] else "other gallery size"


def build_scope(task: str, prefix: str, entities: Sequence[Entity], reference: tuple | None = None) -> Scope | None:
    """The scope of (task, prefix) over these entities; None when no successful run has this prefix."""
    runs = [r for e in entities for r in e.runs if r.ok and prefix in r.outcomes]
    if not runs:
        return None
    ref = reference or reference_eval_set(runs, prefix)
    first = next(r for r in runs if _identity(r, prefix) == ref)
    gallery = first.n_candidates.get(prefix)
    samples, left_out, unverified = {}, [], []
    for e in entities:
        used = []
        for r in e.runs:
            if not r.ok or prefix not in r.outcomes:
                continue
            if _compatible(r, prefix, ref, gallery):
                used.append(r)
            else:
                left_out.append((r, _difference(_identity(r, prefix), ref)))
        if used:
            samples[e.key] = Sample(e, tuple(r.seed for r in used), np.stack([r.outcomes[prefix][1] for r in used]))
            if any(prefix not in r.eval_set for r in used):
                unverified.append(e.label)
    groups = first.groups.get(prefix)
    return Scope(task, prefix, first.outcomes[prefix][0], ref[0], ref[1],
                 None if groups is None else dense_groups(groups), ref, samples, left_out, unverified)


# --- columns of a task ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskLayout:
    """What a task's table shows: metric columns '<prefix>/<metric>', the primary one, query grouping."""

    task: str
    columns: list[str]
    primary: str | None
    query_group: str | None
    note: str | None  # why the columns do not come from the task file


def _prefix_kinds(runs: Sequence[Run]) -> dict[str, str]:
    """prefix -> outcome kind, over successful runs (first seen)."""
    kinds: dict[str, str] = {}
    for run in runs:
        if run.ok:
            for prefix, (kind, _) in run.outcomes.items():
                kinds.setdefault(prefix, kind)
    return kinds


def _recorded_meta(runs: Sequence[Run]) -> tuple[TaskMeta | None, list[int]]:
    """The task_meta of the newest task version among the successful runs, and every version recorded."""
    metas = {r.task_meta.version: r.task_meta for r in runs if r.ok and r.task_meta is not None}
    return (metas[max(metas)] if metas else None), sorted(metas)


def _columns(prefixes: Sequence[str], metrics: Sequence[str], kinds: dict[str, str]) -> list[str]:
    """'<prefix>/<metric>' for the prefixes with outcomes and the metrics that apply to their outcome kind."""
    return [f"{p}/{m}" for p in prefixes if p in kinds for m in metrics
            if (d := metric_def(m)) is not None and d.outcome == kinds[p]]


def task_layout(task: str, runs: Sequence[Run]) -> TaskLayout:
    """Columns and primary metric from the records' task_meta; from the task file only for records without it.

    A missing task file, or one whose version differs from the records', is reported in `note`; without
    task_meta and without a task file there is no primary metric (never a guessed one).
    """
    from pmrl_bench.task import load_task

    runs = [r for r in runs if r.task == task]
    kinds = _prefix_kinds(runs)
    try:
        spec, missing = load_task(task), None
    except BenchError as exc:
        spec, missing = None, str(exc).split(";")[0]
    meta, versions = _recorded_meta(runs)
    if meta is not None:
        notes = []
        if spec is None:
            notes.append(f"tasks/{task}.yaml not found or invalid ({missing}): layout from the records' task_meta")
        elif spec.version != meta.version:
            notes.append(f"tasks/{task}.yaml is version {spec.version} but the records are version {meta.version}: "
                         "layout from the records' task_meta")
        if len(versions) > 1:
            notes.append(f"records of task versions {versions}: layout of version {meta.version}")
        columns = _columns(meta.prefixes, meta.metrics, kinds)
        primary = meta.primary_metric if meta.primary_metric in columns else None
        return TaskLayout(task, columns, primary, meta.query_group, "; ".join(notes) or None)
    if spec is not None:
        columns = _columns(spec.prefixes, spec.metrics, kinds)
        if columns:
            primary = spec.primary_metric if spec.primary_metric in columns else None
            note = None if primary else f"the records have no {spec.primary_metric} outcomes: no primary metric"
            return TaskLayout(task, columns, primary, spec.query_group, note)
        note = f"no metric of tasks/{task}.yaml matches the records' outcomes: columns from the records, no primary metric"
    else:
        note = (f"tasks/{task}.yaml not found or invalid and the records carry no task_meta: columns from the records, "
                "no primary metric (left out of the cross-task ranking)")
    stored = {k for r in runs if r.ok for k in r.metrics}
    names = {p: sorted({split_metric(k)[1] for k in stored if split_metric(k)[0] == p}, key=metric_sort_key)
             for p in sorted(kinds)}
    columns = [f"{p}/{m}" for p, ms in names.items() for m in ms]
    return TaskLayout(task, columns, None, None, note)
