"""Sweeps (slurm/sweeps/*.yaml): expand a grid of runs, submit the runs not done yet, report their status.

`sweep` submits and exits; `status` reads result files first and the scheduler second. The sweep's
state file (<logs_dir>/<sweep>/state.json, written atomically) maps run_id -> job id.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import logging
import os
import shlex
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from pmrl_bench.cluster.executors import (
    PENDING_STATES,
    RUNNING_STATES,
    Executor,
    Profile,
    job_log,
    job_states,
    load_profile,
    load_yaml_model,
    submit_tasks,
    task_spec,
)
from pmrl_bench.config import number_or_self
from pmrl_bench.errors import BenchError, unknown_name
from pmrl_bench.files import atomic_write_text
from pmrl_bench.paths import SWEEPS_DIR
from pmrl_bench.plan import PlannedRun, RunRequest, check_device, plan_run
from pmrl_bench.results.record import corrupt_reason, read_result
from pmrl_bench.safeio import read_bytes
from pmrl_bench.tune import TunePlan, make_plan

LOG = logging.getLogger(__name__)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"  # one folder name: no '/', no '..'
Seed = Annotated[int, Field(ge=0, lt=2**63, strict=True)]  # the same rule as `run --seeds`
MAX_RUNS = 100_000  # a sweep's grid is refused past this many runs, before it is expanded
JUST_SUBMITTED_S = 120  # a job the scheduler does not list yet counts as pending for this long


class SweepSpec(BaseModel):
    """A sweep file: the grid methods x tasks x seeds x overrides, and how its jobs are submitted."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str | None = Field(None, pattern=NAME_PATTERN,
                             description="sweep name (logs/<name>/, letters, digits, '.', '_', '-'); default: the file's stem")
    methods: list[str] = Field(min_length=1, description="registered method names")
    tasks: list[str] = Field(min_length=1, description="task names (tasks/<name>.yaml)")
    seeds: list[Seed] = Field(min_length=1, description="seeds of every (method, task, overrides) cell, in [0, 2^63)")
    overrides: dict[str, Any] = Field(
        default_factory=dict, alias="set",
        description="--set key -> value, or a list of values (the grid takes the product); [[1, 2]] is a list value",
    )
    zipped: dict[str, list[Any]] = Field(
        default_factory=dict, alias="zip", description="--set key -> values that vary together (equal lengths)"
    )
    profile: str | None = Field(None, description="profile name in slurm/profiles/ or a path")
    executor: Executor = Field("slurm", description="slurm, local or debug (--executor wins)")
    runs_per_task: int = Field(1, ge=1, description="runs executed one after the other by one array task")
    results_dir: str = Field("results", description="where records go (--results-dir wins)")
    tune: bool = Field(False, description="two stages per (method, task): every configuration of the method's "
                       "search space with `selection_seeds`, then `seeds` with the winner on validation")
    selection_seeds: list[int] = Field([0], min_length=1, description="seeds of the selection runs (tune)")
    defaults: list[str] = Field([], description="with tune: methods also run at their defaults with `seeds`")
    logs_dir: str = Field("logs", description="submitit logs and the sweep state go to <logs_dir>/<name>/")


@dataclass(frozen=True)
class Sweep:
    """A loaded sweep file and the settings that come from the command line."""

    path: Path
    spec: SweepSpec
    results_dir: Path

    @property
    def name(self) -> str:
        """Name of the sweep (its logs folder)."""
        return self.spec.name or self.path.stem

    @property
    def folder(self) -> Path:
        """Where submitit logs and the state file of this sweep live."""
        return Path(self.spec.logs_dir).resolve() / self.name


def load_sweep(path_or_name: str, results_dir: str | None = None) -> Sweep:
    """A sweep by file path or by name in slurm/sweeps/."""
    path = Path(path_or_name)
    if not path.is_file():
        known = {p.stem: p for p in sorted(SWEEPS_DIR.glob("*.yaml"))}
        if path_or_name not in known:
            raise unknown_name("sweep file", path_or_name, known, f"(a file path or a name in {SWEEPS_DIR})")
        path = known[path_or_name]
    spec = load_yaml_model(path, SweepSpec, "sweep")
    return Sweep(path=path, spec=spec, results_dir=Path(results_dir or spec.results_dir).resolve())


def grid_size(spec: SweepSpec) -> int:
    """Number of runs the sweep expands to, computed without expanding it."""
    n = len(spec.tasks) * len(spec.methods) * len(spec.seeds)
    for value in spec.overrides.values():
        n *= len(value) if isinstance(value, list) else 1
    if spec.zipped:
        n *= min(len(v) for v in spec.zipped.values())
    return n


def override_grid(path: Path, spec: SweepSpec) -> list[list[tuple[str, Any]]]:
    """Every combination of overrides: the product of `set` lists times the rows of `zip`."""
    if (n := grid_size(spec)) > MAX_RUNS:
        raise BenchError(f"{path}: the grid has {n} runs, more than the limit of {MAX_RUNS}; split the sweep")
    for key in spec.overrides.keys() & spec.zipped.keys():
        raise BenchError(f"{path}: set.{key}: also given under zip; name a key in one of them")
    axes = []
    for key, value in spec.overrides.items():
        values = value if isinstance(value, list) else [value]
        if not values:
            raise BenchError(f"{path}: set.{key}: empty list, the grid would have no runs")
        axes.append([(key, number_or_self(v)) for v in values])
    if spec.zipped:
        lengths = {key: len(values) for key, values in spec.zipped.items()}
        if len(set(lengths.values())) > 1:
            raise BenchError(f"{path}: zip: lists of different lengths ({', '.join(f'{k}: {n}' for k, n in lengths.items())})")
        if not next(iter(lengths.values())):
            raise BenchError(f"{path}: zip: empty lists, the grid would have no runs")
        axes.append([[(k, number_or_self(v)) for k, v in zip(spec.zipped, row, strict=True)]
                     for row in zip(*spec.zipped.values(), strict=True)])
    combos = []
    for parts in itertools.product(*axes):
        combo: list[tuple[str, Any]] = []
        for part in parts:
            combo.extend(part if isinstance(part, list) else [part])
        combos.append(combo)
    return combos


def expand(sweep: Sweep) -> list[RunRequest]:
    """The sweep's runs in a stable order (task, method, overrides, seed); names are checked first.

    Requests say device cpu: identity does not depend on the device, and the submitting host may have
    no GPU; jobs get the profile's device (task_spec), checked where they run.
    """
    from pmrl_bench.registry import method_names
    from pmrl_bench.task import task_names

    spec = sweep.spec
    for key, names, known in (("tasks", spec.tasks, task_names()), ("methods", spec.methods, method_names())):
        for name in names:
            if name not in known:
                raise BenchError(f"{sweep.path}: {key}: {unknown_name(key[:-1], name, known)}")
        if len(set(names)) != len(names):
            raise BenchError(f"{sweep.path}: {key}: listed twice: {sorted(n for n in set(names) if names.count(n) > 1)}")
    if spec.tune:
        return [req for plan in tune_plans(sweep) for req in tune_requests(plan)] + [
            RunRequest(task=task, method=method, seed=seed, overrides=combo, results_dir=str(sweep.results_dir))
            for task in spec.tasks for method in spec.defaults
            for combo in override_grid(sweep.path, spec) for seed in spec.seeds
        ]
    return [
        RunRequest(task=task, method=method, seed=seed, overrides=combo, results_dir=str(sweep.results_dir))
        for task in spec.tasks
        for method in spec.methods
        for combo in override_grid(sweep.path, spec)
        for seed in spec.seeds
    ]


def tune_plans(sweep: Sweep) -> list[TunePlan]:
    """The tuning plan of every (task, method, fixed overrides) cell of a tune sweep."""
    spec = sweep.spec
    plans = []
    for task in spec.tasks:
        for method in spec.methods:
            for combo in override_grid(sweep.path, spec):
                try:
                    plans.append(make_plan(method, task, combo, spec.selection_seeds, spec.seeds, str(sweep.results_dir)))
                except BenchError as exc:
                    raise BenchError(f"{sweep.path}: {method} on {task}: {exc}") from None
    return plans


def tune_requests(plan: TunePlan) -> list[RunRequest]:
    """Selection runs, plus the final runs once every selection run is done (a later `sweep` submits them)."""
    selection = plan.choose()
    return plan.selection_requests() + ([] if selection is None else plan.final_requests(selection))


def plan_sweep(sweep: Sweep) -> list[PlannedRun]:
    """Resolve every run exactly as `run` does (same run_id, same result path, done or not)."""
    planned = []
    for req in expand(sweep):
        try:
            planned.append(plan_run(req))
        except BenchError as exc:
            where = " ".join(f"{k}={v}" for k, v in req.overrides) or "no overrides"
            raise BenchError(f"{sweep.path}: set/zip ({req.method} on {req.task}, {where}): {exc}") from None
    if sweep.spec.tune:  # a default run can also be a selection run (the space holds the defaults): run it once
        first = {p.run_id: i for i, p in reversed(list(enumerate(planned)))}
        planned = [p for i, p in enumerate(planned) if first[p.run_id] == i]
    ids = Counter(p.run_id for p in planned)
    if len(ids) != len(planned):
        dup = next(p for p in planned if ids[p.run_id] > 1)
        raise BenchError(f"{sweep.path}: two grid points resolve to the same run ({dup.request.method} "
                         f"{dup.request.task} seed {dup.request.seed}); an override repeats a default")
    return planned


# --- sweep state: run_id -> job -------------------------------------------------------------------

def state_path(sweep: Sweep) -> Path:
    """The sweep's state file (next to the submitit logs)."""
    return sweep.folder / "state.json"


def read_state(sweep: Sweep) -> dict[str, dict[str, Any]]:
    """run_id -> {job_id, executor, submitted_at, submit_commit}; empty when nothing was submitted."""
    path = state_path(sweep)
    if not path.is_file():
        return {}
    try:
        runs = json.loads(read_bytes(path))["runs"]
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise BenchError(f"{path}: damaged sweep state ({exc}); delete it to forget earlier submissions") from None
    if not isinstance(runs, dict):
        raise BenchError(f"{path}: damaged sweep state (runs is not a mapping); delete it to forget earlier submissions")
    good = {rid: e for rid, e in runs.items() if isinstance(e, dict) and isinstance(e.get("job_id"), str)
            and isinstance(e.get("executor"), str)}
    if len(good) != len(runs):
        LOG.warning("warning: %s: ignoring %d damaged entr(y/ies) (no job_id/executor)", path, len(runs) - len(good))
    return good


def write_state(sweep: Sweep, runs: dict[str, dict[str, Any]]) -> None:
    """Replace the state file atomically."""
    text = json.dumps({"sweep": sweep.name, "sweep_file": str(sweep.path.resolve()), "runs": runs}, indent=1)
    atomic_write_text(state_path(sweep), text + "\n")


# --- status ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunStatus:
    """Where one run of a sweep stands: done, failed, running, pending or missing, with a detail."""

    planned: PlannedRun
    state: str
    detail: str = ""
    job_id: str | None = None  # the job that wrote the run's record (env.sweep.job_id), when known

    def line(self) -> str:
        """One line of `status` output."""
        req = self.planned.request
        sets = " ".join(f"{k}={v}" for k, v in req.overrides)
        text = f"{self.state:<8} {req.method:<10} {req.task:<24} seed {req.seed:<3} {self.planned.run_id}"
        return text + (f"  {sets}" if sets else "") + (f"  {self.detail}" if self.detail else "")


def _record_state(planned: PlannedRun) -> RunStatus | None:
    if planned.done:  # planning has just read a valid ok record
        return RunStatus(planned, "done")
    if not os.path.lexists(planned.path):
        return None
    try:
        record = read_result(planned.path)
    except (ValueError, OSError) as exc:
        return RunStatus(planned, "corrupt", f"{planned.path}: {corrupt_reason(exc)} (kept; move it or run --force)")
    if record.status == "ok":
        return RunStatus(planned, "done")
    job = (record.env.get("sweep") or {}).get("job_id")
    return RunStatus(planned, "failed", (record.error or "").splitlines()[0] if record.error else "failed record",
                     None if job is None else str(job))


def _last_log_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def run_statuses(sweep: Sweep, planned: list[PlannedRun]) -> list[RunStatus]:
    """Status of every run: an ok record is done; else the scheduler state of the run's last job (a failed
    run being retried is pending/running); else its failed record; else whether its job ended without one."""
    state = read_state(sweep)
    by_file = {p.run_id: _record_state(p) for p in planned}
    waiting = {p.run_id: state[p.run_id] for p in planned
               if p.run_id in state and (by_file[p.run_id] is None or by_file[p.run_id].state != "done")}
    scheduler: dict[str, str] = {}
    for executor in {e["executor"] for e in waiting.values()}:
        scheduler.update(job_states(executor, sorted({e["job_id"] for e in waiting.values() if e["executor"] == executor})))
    out = []
    for p in planned:
        found = by_file[p.run_id]
        if p.run_id in waiting:
            entry = waiting[p.run_id]
            job = entry["job_id"]
            if found is not None and found.job_id == job:  # this job already wrote the run's (failed) record
                out.append(found)
                continue
            sched = scheduler.get(job) or ("UNKNOWN" if _recent(entry, JUST_SUBMITTED_S) else "gone from the scheduler")
            retry = " (retry of a failed run)" if found else ""
            if sched in RUNNING_STATES:
                found = RunStatus(p, "running", f"job {job}{retry}")
            elif sched in PENDING_STATES:
                found = RunStatus(p, "pending", f"job {job} {sched}{retry}")
            elif found is None:  # the job ended: look again (shared filesystems show new files late)
                log = job_log(sweep.folder, job)
                found = _record_state(p) or RunStatus(
                    p, "failed", f"job {job} ended {sched} without a result: {_last_log_line(log) or 'no log'} ({log})")
        out.append(found or RunStatus(p, "missing"))
    return out


def _recent(entry: dict[str, Any], seconds: float) -> bool:
    """Whether a state entry was submitted less than `seconds` ago."""
    try:
        submitted = dt.datetime.fromisoformat(entry["submitted_at"])
    except (KeyError, ValueError):
        return False
    return (dt.datetime.now(dt.UTC) - submitted).total_seconds() < seconds


def summary(statuses: list[RunStatus]) -> str:
    """The counts line."""
    counts = Counter(s.state for s in statuses)
    order = ("done", "failed", "running", "pending", "missing", "corrupt")
    return f"{len(statuses)} runs: " + ", ".join(f"{counts[k]} {k}" for k in order)


def cli_status(args: argparse.Namespace) -> int:
    """`status`: one line per run and a summary line."""
    sweep = load_sweep(args.sweep_file, args.results_dir)
    statuses = run_statuses(sweep, plan_sweep(sweep))
    for s in statuses:
        print(s.line())
    print(f"sweep {sweep.name}: {summary(statuses)}  (results: {sweep.results_dir}, logs: {sweep.folder})")
    return 0


# --- submission -----------------------------------------------------------------------------------

def _resources(profile: Profile, executor: str) -> str:
    parts = [f"executor {executor}"]
    if executor == "slurm":
        parts += [f"{k} {v}" for k, v in (("partition", profile.partition), ("account", profile.account),
                                           ("qos", profile.qos), ("constraint", profile.constraint)) if v]
    parts += [f"{profile.cpus_per_task} cpus", f"{profile.gpus_per_node} gpus",
              f"mem {profile.mem_gb:g} GB" if profile.mem_gb else "mem default", f"time {profile.time_min} min",
              f"device {profile.device}"]
    if executor == "slurm":
        parts.append(f"at most {profile.array_parallelism} tasks at once")
    return ", ".join(parts)


def cli_sweep(args: argparse.Namespace) -> int:
    """`sweep`: plan the grid, skip done and queued runs, submit the rest as job arrays, print how to watch."""
    from pmrl_bench.env import git_commit

    sweep = load_sweep(args.sweep_file, args.results_dir)
    executor: Executor = args.executor or sweep.spec.executor
    profile = load_profile(args.profile or sweep.spec.profile)
    planned = plan_sweep(sweep)
    statuses = run_statuses(sweep, planned)
    todo = [s.planned for s in statuses if s.state in ("failed", "missing")]
    counts = Counter(s.state for s in statuses)
    tasks = [todo[i : i + sweep.spec.runs_per_task] for i in range(0, len(todo), sweep.spec.runs_per_task)]
    print(f"sweep {sweep.name} ({sweep.path}): {len(planned)} runs: {len(todo)} to submit "
          f"({counts['failed']} failed before, {counts['missing']} new), {counts['done']} done (skipped), "
          f"{counts['running'] + counts['pending']} queued or running (left alone)"
          + (f", {counts['corrupt']} corrupt record(s) kept (not submitted)" if counts["corrupt"] else ""))
    print(f"resources per task ({sweep.spec.runs_per_task} runs): {_resources(profile, executor)}")
    if sweep.spec.tune:
        waiting = 0
        for plan in tune_plans(sweep):
            print(f"  {plan.cost_line()}")
            waiting += plan.choose() is None
        if waiting:
            print(f"{waiting} tuning cell(s) wait for their selection runs; their final seeds are submitted by "
                  f"`sweep` once those are done" + (" (run it again then)" if executor == "slurm" else ""))
    if args.dry_run:
        for s in statuses:
            action = "submit" if s.state in ("failed", "missing") else "skip"
            print(f"  {action:<6} {s.line()}")
        print(f"dry run: would submit {len(tasks)} tasks; nothing submitted")
        return 0
    if not todo:
        print("nothing to submit")
        return 0
    if executor != "slurm":  # runs here: refuse a device this machine lacks before submitting anything
        check_device(profile.device)
    commit = git_commit()
    specs = [task_spec(sweep.name, group, profile, commit) for group in tasks]
    submitted: list[Any] = []
    try:
        submit_tasks(executor, profile, sweep.folder, f"pmrl-{sweep.name}", specs, submitted)
    except Exception as exc:  # sbatch refused (partition, account, no SLURM here): one line, keep what went in
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
        error = BenchError(f"submission failed after {len(submitted)} of {len(specs)} tasks: "
                           f"{type(exc).__name__}: {lines[-1] if lines else ''}")
    else:
        error = None
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    state = read_state(sweep)
    for job, spec in submitted:
        for rid in spec["run_ids"]:
            state[rid] = {"job_id": str(job.job_id), "executor": executor, "submitted_at": now, "submit_commit": commit}
    if submitted:
        write_state(sweep, state)
    if error is not None:
        raise error
    if executor == "debug":  # the debug executor runs a job in this process when its result is asked for
        for job, _ in submitted:
            exc = job.exception()  # not result(): that drops into pdb when the job raises
            if exc is not None:
                LOG.error("job %s raised %s: %s", job.job_id, type(exc).__name__, (str(exc).splitlines() or [""])[0])
        print(f"ran {len(todo)} runs in this process: {summary(run_statuses(sweep, planned))}")
        return _next_stage(args, sweep, planned)
    arrays = sorted({str(job.job_id).split("_")[0] for job, _ in submitted})
    print(f"submitted {len(todo)} runs in {len(submitted)} tasks: job{'s' if len(arrays) > 1 else ''} "
          f"{', '.join(arrays)}")
    print(f"logs: {sweep.folder}/<job id>/  (state: {state_path(sweep)})")
    watch = f"python -m pmrl_bench status {shlex.quote(str(args.sweep_file))}"
    if args.results_dir:
        watch += f" --results-dir {shlex.quote(args.results_dir)}"
    print(f"watch: {watch}" + (f"   or   squeue -j {','.join(arrays)}" if executor == "slurm" else ""))
    if sweep.spec.tune and executor == "local":
        for job, _ in submitted:
            job.wait()
        return _next_stage(args, sweep, planned)
    return 0


def _next_stage(args: argparse.Namespace, sweep: Sweep, planned: list[PlannedRun]) -> int:
    """After a tune sweep's selection runs ran here: submit the final seeds they unlocked, if any."""
    if not sweep.spec.tune or not {p.run_id for p in plan_sweep(sweep)} - {p.run_id for p in planned}:
        return 0
    print("selection done: submitting the final seeds")
    return cli_sweep(args)
