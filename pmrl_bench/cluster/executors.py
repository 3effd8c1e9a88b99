"""Where runs execute: cluster profiles -> submitit executors, the requeueable job, scheduler states.

A job receives a plain spec (JSON-serialisable RunRequest dicts, the sweep's name and the git commit
at submission), never live objects; all training state lives in the runner's epoch checkpoints, so a
preempted job that submitit requeues resumes from disk and ends with the same record.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from submitit.helpers import Checkpointable

from pmrl_bench.errors import BenchError, unknown_name
from pmrl_bench.paths import PROFILES_DIR
from pmrl_bench.plan import RunRequest, checkpoint_path, plan_run
from pmrl_bench.results.record import write_result
from pmrl_bench.runtime import COMPILE_ENV, compile_requested, setup_logging
from pmrl_bench.safeio import read_yaml_file

LOG = logging.getLogger(__name__)

Executor = Literal["slurm", "local", "debug"]
DEFAULT_MAX_ARRAY_SIZE = 1001
SCHEDULER_TIMEOUT_S = 30
# scheduler states (sacct/squeue; local: RUNNING/FINISHED) grouped by what `status` reports
# PREEMPTED: every job is submitted with --requeue, so a preempted job comes back (docs/protocol.md, Cluster runs);
# counting it as ended would let a resubmission start a second job on the same run and checkpoint.
PENDING_STATES = frozenset({"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED",
                            "CONFIGURING", "UNKNOWN", "PREEMPTED"})
RUNNING_STATES = frozenset({"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT"})


class Profile(BaseModel):
    """A cluster profile (slurm/profiles/<name>.yaml): resources and scheduler options of every job."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    partition: str | None = Field(None, description="sbatch --partition")
    account: str | None = Field(None, description="sbatch --account")
    qos: str | None = Field(None, description="sbatch --qos")
    constraint: str | None = Field(None, description="sbatch --constraint (node features)")
    gpus_per_node: int = Field(0, ge=0, description="sbatch --gpus-per-node (0: none requested)")
    cpus_per_task: int = Field(1, ge=1, description="sbatch --cpus-per-task; also torch's thread count")
    mem_gb: float | None = Field(None, gt=0, description="sbatch --mem")
    time_min: int = Field(60, ge=1, description="time limit of one job (sbatch --time), minutes")
    array_parallelism: int = Field(256, ge=1, description="array tasks running at once (--array=...%k)")
    signal_delay_s: int = Field(90, ge=1, description="USR2 this long before the time limit (checkpoint, requeue)")
    max_requeues: int = Field(3, ge=0, description="requeues after a time-out before a job gives up")
    setup: list[str] = Field(default_factory=list, description="shell lines before the run (modules, venv)")
    extra: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="further sbatch options, e.g. {mail-type: END}; requeue: true is added"
    )
    device: str = Field("cpu", description="device of the runs: cpu, cuda")

    @model_validator(mode="after")
    def _signal_before_limit(self) -> Profile:
        if self.signal_delay_s >= self.time_min * 60:
            raise ValueError(f"signal_delay_s ({self.signal_delay_s}) must be below time_min*60 ({self.time_min * 60})")
        return self


def load_yaml_model(path: Path, model: type[BaseModel], what: str) -> Any:
    """Parse a YAML file into `model`; any problem is one BenchError line naming the file and the key."""
    data = read_yaml_file(path, what)
    if not isinstance(data, dict):
        raise BenchError(f"{path}: a {what} must be a mapping of keys to values")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])  # a misspelt key first
        key = ".".join(map(str, err["loc"])) or "(top level)"
        if err["type"] == "extra_forbidden":
            known = [f.alias or name for name, f in model.model_fields.items()]
            raise BenchError(f"{path}: {unknown_name(f'{what} key', key, known)}") from None
        raise BenchError(f"{path}: {key}: {err['msg']}") from None


def profile_files() -> dict[str, Path]:
    """Profiles shipped in slurm/profiles/, by name."""
    return {p.stem: p for p in sorted(PROFILES_DIR.glob("*.yaml"))}


def load_profile(name_or_path: str | None) -> Profile:
    """A profile by file path or by name in slurm/profiles/; None gives the defaults."""
    if name_or_path is None:
        return Profile()
    path = Path(name_or_path)
    if not path.is_file():
        known = profile_files()
        if name_or_path not in known:
            raise unknown_name("profile", name_or_path, known, f"(a file path or a name in {PROFILES_DIR})")
        path = known[name_or_path]
    return load_yaml_model(path, Profile, "profile")


def executor_parameters(profile: Profile, executor: Executor, name: str) -> dict[str, Any]:
    """The submitit `update_parameters` keywords of a profile for one executor (docs/protocol.md, Cluster runs)."""
    params: dict[str, Any] = {"name": name, "timeout_min": profile.time_min, "cpus_per_task": profile.cpus_per_task}
    if profile.mem_gb is not None:
        params["mem_gb"] = profile.mem_gb
    if profile.gpus_per_node:
        params["gpus_per_node"] = profile.gpus_per_node
    if executor != "slurm":
        return params
    slurm = {"partition": profile.partition, "account": profile.account, "qos": profile.qos,
             "constraint": profile.constraint}
    params.update({f"slurm_{k}": v for k, v in slurm.items() if v is not None})
    params["slurm_array_parallelism"] = profile.array_parallelism
    params["slurm_signal_delay_s"] = profile.signal_delay_s
    params["slurm_additional_parameters"] = {"requeue": True, **profile.extra}
    if profile.setup:
        params["slurm_setup"] = list(profile.setup)
    return params


def make_executor(executor: Executor, profile: Profile, folder: Path, name: str) -> Any:
    """A submitit executor writing its logs under `folder/<job id>/`."""
    import submitit

    kwargs = {"slurm_max_num_timeout": profile.max_requeues} if executor == "slurm" else {}
    ex = submitit.AutoExecutor(folder=str(Path(folder) / "%j"), cluster=executor, **kwargs)
    ex.update_parameters(**executor_parameters(profile, executor, name))
    return ex


def max_array_size() -> int:
    """The cluster's MaxArraySize (`scontrol show config`), else Slurm's default 1001."""
    try:
        out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                             timeout=SCHEDULER_TIMEOUT_S).stdout
    except (OSError, subprocess.SubprocessError):
        return DEFAULT_MAX_ARRAY_SIZE
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)", out, re.MULTILINE)
    return int(match.group(1)) if match else DEFAULT_MAX_ARRAY_SIZE


def chunk(items: Sequence[Any], size: int) -> list[list[Any]]:
    """Consecutive pieces of at most `size` items."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def pack(items: Sequence[Any], n_groups: int) -> list[list[Any]]:
    """At most `n_groups` consecutive pieces of near-equal size."""
    return chunk(items, max(1, math.ceil(len(items) / n_groups)))


def submit_tasks(executor: Executor, profile: Profile, folder: Path, name: str,
                 specs: list[dict[str, Any]], submitted: list[Any] | None = None) -> list[tuple[Any, list[dict[str, Any]]]]:
    """Submit one job per task spec (SLURM: job arrays split at MaxArraySize) and return (job, spec) pairs.

    The local executor starts every job at once, so its tasks are packed into `array_parallelism`
    processes, each with a time limit that covers the tasks it holds.
    """
    if executor == "local" and len(specs) > profile.array_parallelism:
        groups = pack(specs, profile.array_parallelism)
        per = max(len(g) for g in groups)
        specs = [{**g[0], "runs": [r for s in g for r in s["runs"]], "run_ids": [r for s in g for r in s["run_ids"]]}
                 for g in groups]
        profile = profile.model_copy(update={"time_min": profile.time_min * per})
    ex = make_executor(executor, profile, folder, name)
    size = max_array_size() if executor == "slurm" else len(specs)
    submitted = [] if submitted is None else submitted  # filled as arrays go in, also when a later one fails
    for piece in chunk(specs, size):
        jobs = ex.map_array(SweepTask(), piece)
        submitted.extend(zip(jobs, piece, strict=True))
    return submitted


class SweepTask(Checkpointable):
    """The callable each job runs: its runs in order; requeued by submitit on preemption or time-out.

    It holds no state: `checkpoint` (inherited) resubmits the same spec, and every run then resumes
    from its own epoch checkpoint or skips as done.
    """

    def __call__(self, spec: dict[str, Any]) -> list[dict[str, Any]]:
        return run_task(spec)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit's USR2 handler before it requeues: from now on errors are the interruption's."""
        from pmrl_bench.runner import INTERRUPTED

        INTERRUPTED.set()
        return super().checkpoint(*args, **kwargs)


def task_spec(sweep: str, planned: Sequence[Any], profile: Profile, submit_commit: str | None) -> dict[str, Any]:
    """The plain, JSON-serialisable input of one job: its RunRequest dicts on the profile's device, run ids.

    `compile` carries `--compile` to the job itself, whatever environment the cluster passes on.
    """
    runs = [p.request.model_copy(update={"device": profile.device}).model_dump(mode="json") for p in planned]
    return {"sweep": sweep, "runs": runs, "run_ids": [p.run_id for p in planned],
            "threads": profile.cpus_per_task, "submit_commit": submit_commit, "compile": compile_requested()}


def _log(msg: str) -> None:
    LOG.info(msg)


def run_task(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Job entry point: execute each run of a task spec (done runs skip) and return one summary per run.

    A run that fails gets a `failed` record and no checkpoint left behind; the other runs go on. The
    record's env gets `sweep` {name, job_id, restart_count, submit_commit}; env.git_commit (filled by
    the runner) is the commit the job ran, so a change of code after submission shows in the record.
    """
    import torch

    from pmrl_bench.env import git_commit
    from pmrl_bench.runner import INTERRUPTED, execute, summary_line

    setup_logging(0)  # a job's log lines go to its stderr file
    torch.set_num_threads(int(spec["threads"]))
    if spec.get("compile"):
        os.environ[COMPILE_ENV] = "1"
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    job_id = (f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array else None) or os.environ.get(
        "SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID") or str(os.getpid())
    restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
    commit, tag = git_commit(), f"[sweep {spec['sweep']}]"
    _log(f"{tag} job {job_id} pid {os.getpid()}: {len(spec['runs'])} runs, restart count {restarts}, "
         f"submitted at commit {spec['submit_commit']}, running commit {commit}")
    if spec["submit_commit"] != commit:
        _log(f"{tag} warning: the code changed since submission; each record's env shows both commits")
    provenance = {"name": spec["sweep"], "job_id": job_id, "restart_count": restarts,
                  "submit_commit": spec["submit_commit"]}
    summaries, unplanned = [], []
    for raw in spec["runs"]:
        req = RunRequest.model_validate({**raw, "provenance": provenance})
        try:
            planned = plan_run(req)
        except Exception as exc:  # task or method files changed since submission: no run id, no record
            unplanned.append(f"{req.method} {req.task} seed {req.seed}: {_first_line(exc)}")
            _log(f"{tag} cannot plan {unplanned[-1]}")
            continue
        if planned.done:  # e.g. requeued after the record was written
            checkpoint_path(req.results_dir, planned.run_id).unlink(missing_ok=True)
            summaries.append({"run_id": planned.run_id, "status": "ok", "skipped": True})
            continue
        try:
            record = execute(req)
        except Exception as exc:  # what the runner raises instead of recording (user errors, data loading)
            if INTERRUPTED.is_set():  # the requeue itself failed mid-way: no record, the checkpoint stays
                raise
            record = _failed_record(planned, _first_line(exc), provenance)
            write_result(Path(req.results_dir), record)
        _log(summary_line(record, planned.path))
        summaries.append({"run_id": record.run_id, "status": record.status, "error": record.error})
    if unplanned:
        raise RuntimeError(f"{len(unplanned)} runs could not be planned; first: {unplanned[0]}")
    return summaries


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _failed_record(planned: Any, error: str, provenance: dict[str, Any]) -> Any:
    """A `failed` record for a run that raised; its checkpoint is removed."""
    from pmrl_bench.env import environment
    from pmrl_bench.results.record import RunResult

    req = planned.request
    checkpoint_path(req.results_dir, planned.run_id).unlink(missing_ok=True)
    return RunResult(run_id=planned.run_id, config_hash=planned.config_hash, method=req.method, task=planned.spec.name,
                     seed=req.seed, status="failed", error=error, config=planned.config,
                     env={**environment(req.device), "sweep": provenance}, created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))


def job_states(executor: Executor, job_ids: Sequence[str]) -> dict[str, str]:
    """Scheduler state per job id (e.g. '12_3' -> 'RUNNING'); ids the scheduler does not know are left out."""
    if not job_ids:
        return {}
    if executor == "local":  # the job id is the controller's pid
        return {j: "RUNNING" if _alive(int(j)) else "FINISHED" for j in job_ids if j.isdigit()}
    if executor == "debug":
        return {j: "FINISHED" for j in job_ids}
    base = sorted({j.split("_")[0] for j in job_ids})
    states, sacct_error = _scheduler_table(["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", ",".join(base)])
    missing = [j for j in base if not any(k.split("_")[0] == j for k in states)]
    if missing:  # no accounting (or no row yet): ask the queue
        queued, squeue_error = _scheduler_table(["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(missing)])
        if sacct_error and squeue_error:  # unknown is not the same as ended: never guess
            raise BenchError(f"cannot ask SLURM about jobs {','.join(missing)}: {sacct_error}; {squeue_error} "
                             "(is SLURM_CONF set and slurmctld up?)")
        states.update(queued)
    return states


def _scheduler_table(cmd: list[str]) -> tuple[dict[str, str], str | None]:
    """A sacct/squeue listing as job id -> state, and the command's error when it failed."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=SCHEDULER_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as exc:
        return {}, f"{cmd[0]}: {exc}"
    if proc.returncode != 0 and "Invalid job id" not in proc.stderr:  # squeue: every id has left the queue
        lines = proc.stderr.strip().splitlines()
        return {}, f"{cmd[0]}: {lines[-1] if lines else f'exit code {proc.returncode}'}"
    table = {}
    for line in proc.stdout.splitlines():
        job, _, state = line.strip().partition("|")
        if job and state:
            for one in expand_array_ids(job):
                table[one] = state.split()[0]  # "CANCELLED by 0" -> "CANCELLED"
    return table, None


def expand_array_ids(job: str) -> list[str]:
    """sacct's compressed pending array rows, '12_[0-2,5%2]' -> ['12_0', '12_1', '12_2', '12_5']."""
    match = re.fullmatch(r"(\d+)_\[([\d,\-]+)(?:%\d+)?\]", job)
    if not match:
        return [job]
    ids = []
    for part in match.group(2).split(","):
        lo, _, hi = part.partition("-")
        ids.extend(f"{match.group(1)}_{i}" for i in range(int(lo), int(hi or lo) + 1))
    return ids


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def job_log(folder: Path, job_id: str) -> Path:
    """The stderr log of a job's first task under the sweep's submitit folder."""
    return Path(folder) / job_id / f"{job_id}_0_log.err"
