"""Download and install time of the core install versus the full one (`pmrl_bench[test]`), into fresh venvs.

1. The project's wheel is built once (`pip wheel --no-deps --no-build-isolation`).
2. Download: `pip download <wheel>[extras]` from the package index (PyPI) into one wheel folder per variant,
   torch pinned to the CPU wheel given by `--torch-wheel` (a local file: the CPU index is not always
   reachable, and the index's default torch is the CUDA build). Timed once per variant: it depends on the
   network more than on the machine.
3. Install: a fresh venv per repeat and variant (its creation not timed), then
   `pip install --no-index --find-links <wheel folder> <wheel>[extras]`: offline, so this is the install
   time alone. Variants are interleaved, `--repeats` times; min and median are printed with the load
   average before and after each install, and the venv's size on disk.

pip runs `--isolated` (no user or site configuration, no local indexes), with `--no-cache-dir`.

    python benchmarks/install_time.py [--repeats 2] [--torch-wheel /opt/wheels/torch-...whl] [--keep DIR]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {"core": "", "full ([test])": "[test]"}
INDEX = "https://pypi.org/simple"
CERT = "/etc/ssl/certs/ca-certificates.crt"


def load() -> str:
    """The 1-minute load average, for the figures' context."""
    return f"{os.getloadavg()[0]:.1f}"


def pip(python: str | Path, *args: str) -> float:
    """Run `python -m pip --isolated ARGS` quietly and return its wall time in seconds (fails loudly)."""
    cert = ["--cert", CERT] if Path(CERT).exists() else []
    t0 = time.perf_counter()
    subprocess.run([str(python), "-m", "pip", "--isolated", "-q", "--no-cache-dir", "--disable-pip-version-check", *cert,
                    *args], check=True)
    return time.perf_counter() - t0


def folder_mib(path: Path) -> float:
    """Bytes of the regular files under `path`, in MiB."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


def main() -> None:
    """Print the download and install tables of benchmarks/RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--torch-wheel", default=(sorted(glob.glob("/opt/wheels/torch-*+cpu-*.whl")) or [""])[-1])
    parser.add_argument("--keep", type=Path, help="download into (and reuse) this folder instead of a temporary one")
    args = parser.parse_args()
    if not args.torch_wheel:
        sys.exit("error: give --torch-wheel, a CPU torch wheel file (pip download torch --index-url "
                 "https://download.pytorch.org/whl/cpu)")
    torch_wheel = Path(args.torch_wheel)
    version = torch_wheel.name.split("-")[1]
    work = Path(tempfile.mkdtemp(prefix="install-time-"))
    cache = args.keep or work / "wheels"
    try:
        constraints = work / "constraints.txt"
        constraints.write_text(f"torch=={version}\n")
        build = pip(sys.executable, "wheel", "--no-deps", "--no-build-isolation", "-w", str(work / "dist"), str(ROOT))
        wheel = next((work / "dist").glob("pmrl_bench-*.whl"))
        print(f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}; torch {torch_wheel.name} (local file)")
        print(f"project wheel built in {build:.1f} s (load {load()})")
        print("\n| install | download from PyPI | wheels | load |\n| --- | --- | --- | --- |")
        for label, extras in VARIANTS.items():
            dest = cache / label.split()[0]
            dest.mkdir(parents=True, exist_ok=True)
            before = load()
            seconds = pip(sys.executable, "download", "-d", str(dest), "--index-url", INDEX,
                          "--find-links", str(torch_wheel.parent), "-c", str(constraints), f"{wheel}{extras}")
            n, mib = len(list(dest.glob("*"))), folder_mib(dest)
            print(f"| {label} | {seconds:.1f} s | {n} files, {mib:,.0f} MiB | {before} -> {load()} |", flush=True)
        times: dict[str, list[float]] = {label: [] for label in VARIANTS}
        print("\n| repeat | install | install time (offline) | venv size | load before -> after |")
        print("| --- | --- | --- | --- | --- |")
        for repeat in range(args.repeats):
            for label, extras in VARIANTS.items():
                venv = work / "venv"
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
                before = load()
                seconds = pip(venv / "bin" / "python", "install", "--no-index", "--find-links",
                              str(cache / label.split()[0]), f"{wheel}{extras}")
                times[label].append(seconds)
                print(f"| {repeat} | {label} | {seconds:.1f} s | {folder_mib(venv):,.0f} MiB | {before} -> {load()} |",
                      flush=True)
                shutil.rmtree(venv)
        print("\n| install | min | median |\n| --- | --- | --- |")
        for label, values in times.items():
            print(f"| {label} | {min(values):.1f} s | {statistics.median(values):.1f} s |")
        core, full = (min(v) for v in times.values())
        print(f"full / core install time (min): {full / core:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
