"""Evaluation overhead (P1) and throughput against a fresh interpreter per candidate (P2).

P1: wall time of a sandboxed evaluation (warm server, bubblewrap, trusted scoring) divided by the
    time the same training takes in-process. Candidate: the AdamW seed, both selection stages.
P2: candidates per hour on 2 cores, 2 at a time, for the zoo's seeds: warm fork server vs a fresh
    Python interpreter per candidate stage (the way OpenEvolve and ShinkaEvolve evaluate).
Usage: .venv/bin/python benchmarks/evaluation_speed.py [p1] [p2]   (both by default)
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from evaluators.cascade import evaluate  # noqa: E402
from evaluators.jail import describe  # noqa: E402
from evaluators.jobs import EvalJob  # noqa: E402
from evolve.config import EvaluatorConfig  # noqa: E402
from evolve.loader import ProblemRef, builtin_problems  # noqa: E402

REF = ProblemRef(str(builtin_problems()["optimizer_discovery"]), {})
LIMITS = EvaluatorConfig(timeout_s=600, memory_mb=4096)


def evaluate_cascade(pid: int, code: str, ref: ProblemRef, limits: EvaluatorConfig, warm: bool) -> object:
    return evaluate(EvalJob(pid, code), ref, limits.model_copy(update={"warm_start": warm}))


def p1() -> None:
    torch.set_num_threads(1)
    problem = REF.load()
    code = problem.seed_programs()["adamw"]
    problem.prepare()
    from problems.optimizer_discovery.problem import load_rule

    t0 = time.perf_counter()
    for stage in problem.stages:  # the same rounds, training and trusted scoring, without the sandbox
        problem.score_in_process(stage.name, lambda name: lambda: load_rule(code))
    in_process = time.perf_counter() - t0
    evaluate_cascade(0, code, REF, LIMITS, warm=True)  # start the server (and measure the compute reference)
    rows = []
    for warm in (True, False):
        t0 = time.perf_counter()
        r = evaluate_cascade(1, code, REF, LIMITS, warm=warm)
        wall = time.perf_counter() - t0
        assert r.ok  # type: ignore[attr-defined]
        rows.append((("warm server" if warm else "fresh interpreter"), wall))
    print(f"P1 ({describe(LIMITS.isolation)['summary']}): in-process training {in_process:.2f} s")
    for name, wall in rows:
        print(f"  {name:18} evaluation {wall:6.2f} s  ratio {wall / in_process:.3f}")


def p2() -> None:
    seeds = REF.load().seed_programs()
    codes = [seeds[n] for n in ("sgd", "momentum", "adam", "adamw", "rmsprop", "adafactor", "lion", "nesterov")]
    print(f"P2: {len(codes)} candidates, 2 at a time")
    for warm in (True, False):
        with ThreadPoolExecutor(2) as pool:  # servers start inside the timed window: a cold start counts
            t0 = time.perf_counter()
            results = list(pool.map(lambda c, w=warm: evaluate_cascade(1, c, REF, LIMITS, warm=w), codes))
            wall = time.perf_counter() - t0
        assert all(r.fitness is not None for r in results)  # type: ignore[attr-defined]
        label = "warm server" if warm else "fresh interpreter"
        print(f"  {label:18} {wall:6.1f} s  {3600 * len(codes) / wall:7.0f} candidates/hour")


if __name__ == "__main__":
    parts = sys.argv[1:] or ["p1", "p2"]
    if "p1" in parts:
        p1()
    if "p2" in parts:
        p2()
