"""User-facing errors: one line that says what to do, exit code 2, no traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class BenchError(Exception):
    """An error caused by the user's input (names, files, data); printed as one line, exit code 2."""


class EnvironmentFailure(Exception):
    """The machine stopped a run (disk full, permissions, memory): one line, exit code 3, no record replaced."""


EXIT_ENVIRONMENT = 3
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader closed the pipe


def unknown_name(kind: str, name: str, known: Iterable[str], hint: str = "") -> BenchError:
    """Build the error for an unknown name, naming the close matches (difflib) or the known names."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if close:
        tail = "did you mean " + " or ".join(repr(c) for c in close) + "?"
    else:
        tail = "known: " + (", ".join(known) if known else "none")
    msg = f"unknown {kind} {name!r}; {tail}"
    return BenchError(msg + (f" {hint}" if hint else ""))
