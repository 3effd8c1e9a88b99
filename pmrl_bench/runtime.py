"""Process-wide runtime settings: torch's thread count, compiled kernels, log verbosity, and progress reporting."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from pmrl_bench.errors import BenchError

LOG = logging.getLogger("pmrl_bench")
PROGRESS_EVERY_S = 30.0  # seconds between progress log lines when stderr is not a terminal
COMPILE_ENV = "PMRL_BENCH_COMPILE"  # 1: per-pair closed forms run as compiled kernels (`fused`)

Fn = TypeVar("Fn", bound=Callable[..., Any])
_COMPILED: dict[Callable[..., Any], Callable[..., Any]] = {}


def allotted_cpus(environ: Mapping[str, str] | None = None) -> int:
    """CPUs this process may use: its affinity mask, capped by SLURM_CPUS_PER_TASK inside a SLURM job."""
    environ = os.environ if environ is None else environ
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity masks on this platform (macOS, Windows)
        n = os.cpu_count() or 1
    slurm = environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        n = min(n, int(slurm))
    return max(1, n)


def apply_threads(threads: int | None) -> int:
    """Set torch's intra-op threads to `threads` (default: the allotted CPUs) and return the number used."""
    import torch

    n = allotted_cpus() if threads is None else threads
    if n < 1:
        raise BenchError(f"--threads {n}: expected a positive number of threads")
    torch.set_num_threads(n)
    LOG.debug("torch threads: %d (allotted CPUs: %d)", n, allotted_cpus())
    return n


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether an on/off environment variable is on: set, and neither empty nor 0."""
    return (os.environ if environ is None else environ).get(name, "") not in ("", "0")


def compile_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Whether PMRL_BENCH_COMPILE asks for compiled kernels (set by `--compile`; sweep jobs get it in their spec)."""
    return env_flag(COMPILE_ENV, environ)


def fused(fn: Fn) -> Fn:
    """`fn` as one torch.compile kernel when PMRL_BENCH_COMPILE=1, else `fn` itself.

    Compiled once per process (dynamic shapes: chunk sizes vary). A backend that cannot build it (no C++
    compiler, no Triton) falls back to `fn` for the rest of the process with one warning; the results agree
    to float rounding either way (tests/test_sigma1_accuracy.py).
    """
    if not compile_requested():
        return fn

    def call(*args: Any) -> Any:
        if fn not in _COMPILED:
            import torch

            _COMPILED[fn] = torch.compile(fn, dynamic=True)
        try:
            return _COMPILED[fn](*args)
        except Exception as exc:  # noqa: BLE001  (any backend failure: compute eagerly instead)
            if _COMPILED[fn] is fn:
                raise
            reason = next(iter(str(exc).strip().splitlines()), "")[:200]
            LOG.warning("warning: %s=1 but torch.compile cannot build %s (%s: %s); computing it eagerly",
                        COMPILE_ENV, fn.__name__, type(exc).__name__, reason)
            _COMPILED[fn] = fn
            return fn(*args)

    return call  # type: ignore[return-value]


class _Stderr(logging.Handler):
    """Writes each record as one line to whatever sys.stderr is at the time."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except Exception:  # noqa: BLE001  (logging's contract: never raise from emit)
            self.handleError(record)


def setup_logging(verbosity: int) -> None:
    """Log records of pmrl_bench as plain lines on stderr: warnings and up at -q, info by default, debug at -v."""
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    LOG.handlers[:] = [_Stderr()]
    LOG.setLevel(level)
    LOG.propagate = False


class Progress:
    """A tqdm bar when stderr is a terminal, else one log line every PROGRESS_EVERY_S seconds and one at the end."""

    def __init__(self, total: int, desc: str, enabled: bool | None = None, unit: str = "item",
                 every_s: float = PROGRESS_EVERY_S) -> None:
        self.total, self.desc, self.unit, self.every_s = total, desc, unit, every_s
        self.enabled = True if enabled is None else enabled
        self.bar: Any = None
        if self.enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False)
        self.done, self.t0 = 0, time.monotonic()
        self.last = self.t0

    def update(self, n: int) -> None:
        """Count `n` more units done."""
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.enabled and time.monotonic() - self.last >= self.every_s:
            self._log()

    def _log(self) -> None:
        self.last = now = time.monotonic()
        rate = self.done / max(now - self.t0, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        LOG.info("%s: %d/%d %ss (%.1f/s, %.0f s left)", self.desc, self.done, self.total, self.unit, rate, eta)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and exc_type is None and time.monotonic() - self.t0 >= self.every_s:
            self._log()
