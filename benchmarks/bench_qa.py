"""Seconds per 1,000 questions of the QA evaluators, side by side with the retrieval evaluation, in one process.

Usage: python benchmarks/bench_qa.py [--methods pmrl clip] [--questions 2000] [--train-questions 4000]
       python benchmarks/bench_qa.py --against DIR [--repeats 3] [same options]
With --against DIR (a checkout of an earlier commit, e.g. `git worktree add /tmp/old <rev>`), the bench of DIR
and this one run as subprocesses, interleaved, each on its own tree; the table gives the min and median per
column over the repeats and the ratio earlier / this (options the earlier script lacks are not passed to it).
Inputs are random features through freshly initialised heads (64-d, as in the tasks): the cost does not
depend on what was learnt. Retrieval: text queries against N (vision, audio) items (N = --questions);
multiple choice: 5 candidates per question; open-ended: the answer head (L2 chosen on --val-questions
validation questions over 5 penalties, then one final fit on train + validation) on --train-questions
training questions plus the question-only baseline, --answers answers (random labels: the probe runs its
full iteration budget, the worst case).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from pmrl_bench.data.features import QuestionFeatures, SplitFeatures, single_row_features
from pmrl_bench.evaluation.qa import evaluate_qa
from pmrl_bench.evaluation.retrieval import evaluate_direction, project_rows
from pmrl_bench.registry import get_method
from pmrl_bench.task import QASpec, RetrievalDirection
from pmrl_bench.train.heads import ProjectionHeads

DIMS = {"text": 384, "vision": 1280, "audio": 512}


def split(name: str, n_items: int, n_q: int, seed: int, n_answers: int, n_cands: int = 5) -> SplitFeatures:
    """Random features of n_items items and n_q questions (answers drawn uniformly, MC candidates random)."""
    g = torch.Generator().manual_seed(seed)
    ids = tuple(f"{name}{i}" for i in range(n_items))
    mods = {m: single_row_features(torch.randn(n_items, d, generator=g), ids) for m, d in DIMS.items()}
    answers = torch.randint(0, n_answers, (n_q,), generator=g).tolist()
    questions = QuestionFeatures(
        ids=tuple(f"q{k}" for k in range(n_q)), item_index=torch.randint(0, n_items, (n_q,), generator=g),
        question=torch.randn(n_q, DIMS["text"], generator=g), answers=tuple(str(a) for a in answers),
        qtypes=tuple(f"t{a % 3}" for a in answers), candidates=torch.randn(n_q, n_cands, DIMS["text"], generator=g))
    return SplitFeatures(split=name, item_ids=ids, modalities=mods, questions=questions)


def per_1000(fn, n: int) -> float:
    """Seconds per 1,000 units of one call of fn over n units."""
    t0 = time.perf_counter()
    fn()
    return 1000.0 * (time.perf_counter() - t0) / n


def parse_rows(text: str) -> dict[str, list[float]]:
    """{method: [retrieval, mc, open-ended]} from the table this script prints."""
    rows = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] != "method":
            try:
                rows[parts[0]] = [float(v) for v in parts[1:]]
            except ValueError:
                continue
    return rows


def against(earlier: Path, argv: list[str], repeats: int) -> None:
    """Run the earlier tree's bench and this one alternately as subprocesses; print min / median and ratios."""
    here = Path(__file__).resolve().parents[1]
    shared = list(argv)  # the earlier script has no --val-questions
    if "--val-questions" in shared:
        k = shared.index("--val-questions")
        del shared[k:k + 2]
    runs: dict[str, list[dict[str, list[float]]]] = {"earlier": [], "this": []}
    for _ in range(repeats):
        for name, tree, args in (("earlier", earlier, shared), ("this", here, argv)):
            env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
            out = subprocess.run([sys.executable, str(tree / "benchmarks" / "bench_qa.py"), *args], env=env,
                                 capture_output=True, text=True, check=True).stdout
            runs[name].append(parse_rows(out))
    print(f"{repeats} interleaved repeats; earlier = {earlier}, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"  {'method':<10} {'column':<12} {'earlier min':>12} {'this min':>9} {'earlier med':>12} {'this med':>9} "
          f"{'ratio (min)':>12}")
    for method in runs["this"][0]:
        for col, label in enumerate(("retrieval", "mc", "open-ended")):
            e = [r[method][col] for r in runs["earlier"]]
            t = [r[method][col] for r in runs["this"]]
            print(f"  {method:<10} {label:<12} {min(e):12.3f} {min(t):9.3f} {statistics.median(e):12.3f} "
                  f"{statistics.median(t):9.3f} {min(e) / min(t):12.2f}")


def main() -> None:
    if "--against" in sys.argv:
        k = sys.argv.index("--against")
        rest = sys.argv[1:k] + sys.argv[k + 2:]
        repeats = 3
        if "--repeats" in rest:
            r = rest.index("--repeats")
            repeats, rest = int(rest[r + 1]), rest[:r] + rest[r + 2:]
        against(Path(sys.argv[k + 1]), rest, repeats)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["pmrl", "clip"])
    parser.add_argument("--questions", type=int, default=2000)
    parser.add_argument("--train-questions", type=int, default=2000)
    parser.add_argument("--val-questions", type=int, default=200)
    parser.add_argument("--answers", type=int, default=20, help="answer vocabulary size (tuxpaint-qa: 17)")
    args = parser.parse_args()
    torch.manual_seed(0)
    n = args.questions
    test = split("test", n, n, 1, args.answers)
    train = split("train", args.train_questions, args.train_questions, 2, args.answers)
    val = split("val", args.val_questions, args.val_questions, 3, args.answers)
    mc_answers = tuple(str(int(a) % 5) for a in test.questions.answers)  # a candidate index
    mc_test = dataclasses.replace(test, questions=dataclasses.replace(test.questions, answers=mc_answers))
    heads = ProjectionHeads(DIMS, 64, 256, 2, 0.0).eval()
    direction = RetrievalDirection(name="t2va", query=["text"], candidates=["vision", "audio"])
    mc = QASpec(name="mc", mode="multiple_choice", media=["vision", "audio"])
    oe = QASpec(name="qa", mode="open_ended", media=["vision", "audio"], top_k=args.answers)
    print(f"seconds per 1,000 queries/questions, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
          f"{n} test questions ({n} retrieval candidates), {args.train_questions} training questions, "
          f"{args.val_questions} validation questions, "
          f"{args.answers} answers")
    print(f"  {'method':<10} {'retrieval':>10} {'mc (5 cand.)':>13} {'open-ended':>11}")
    for name in args.methods:
        method = get_method(name)(list(DIMS))

        def project(m: str, rows: torch.Tensor) -> torch.Tensor:
            return project_rows(heads, m, rows, "cpu")

        with torch.no_grad():
            r = per_1000(lambda m=method: evaluate_direction(m, heads, test, direction, ["R@1"], "cpu"), n)
            c = per_1000(lambda m=method: evaluate_qa(m, project, train, None, mc_test, mc), n)
        o = per_1000(lambda m=method: evaluate_qa(m, project, train, val, test, oe), n)
        print(f"  {name:<10} {r:10.3f} {c:13.3f} {o:11.3f}")


if __name__ == "__main__":
    main()
