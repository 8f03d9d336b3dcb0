"""Evaluation overhead (P1) and throughput against a fresh interpreter per candidate (P2).

P1: wall time of a sandboxed evaluation (warm server, bubblewrap, trusted scoring) divided by the
    time the same training takes in-process. Candidate: the AdamW seed, both selection stages.
P2: candidates per hour on 2 cores, 2 at a time, for the zoo's seeds: warm fork server vs a fresh
    Python interpreter per candidate stage (the way OpenEvolve and ShinkaEvolve evaluate).
Usage: .venv/bin/python benchmarks/evaluation_speed.py [p1] [p2]   (both by default; about 12 min on 2 idle
cores). Writes its tables into benchmarks/RESULTS.md (markers eval-p1, eval-p2). P1 repeats each path
REPEATS times and prints the median with the range; P2 is one run per path.
"""

from __future__ import annotations

import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from tables import markdown, publish  # noqa: E402

from evaluators.cascade import evaluate  # noqa: E402
from evaluators.jail import describe  # noqa: E402
from evaluators.jobs import EvalJob  # noqa: E402
from evolve.config import EvaluatorConfig  # noqa: E402
from evolve.loader import ProblemRef, builtin_problems  # noqa: E402

REF = ProblemRef(str(builtin_problems()["optimizer_discovery"]), {})
LIMITS = EvaluatorConfig(timeout_s=600, memory_mb=4096)


def evaluate_cascade(pid: int, code: str, ref: ProblemRef, limits: EvaluatorConfig, warm: bool) -> object:
    return evaluate(EvalJob(pid, code), ref, limits.model_copy(update={"warm_start": warm}))


REPEATS = 3


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s [{min(values):.2f}, {max(values):.2f}]"


def p1() -> None:
    torch.set_num_threads(1)
    problem = REF.load()
    code = problem.seed_programs()["adamw"]
    problem.prepare()
    from problems.optimizer_discovery.problem import load_rule

    in_process = []
    for _ in range(REPEATS):  # the same rounds, training and trusted scoring, without the sandbox
        t0 = time.perf_counter()
        for stage in problem.stages:
            problem.score_in_process(stage.name, lambda name: lambda: load_rule(code))
        in_process.append(time.perf_counter() - t0)
        problem._losses.clear()  # each repeat measures its own losses, as a sandboxed evaluation does
    evaluate_cascade(0, code, REF, LIMITS, warm=True)  # start the server (and measure the compute reference)
    walls: dict[str, list[float]] = {"warm server (default)": [], "fresh interpreter per stage": []}
    for _ in range(REPEATS):
        for warm, label in ((True, "warm server (default)"), (False, "fresh interpreter per stage")):
            problem._losses.clear()  # the same problem object scores it: no losses carried from another run
            t0 = time.perf_counter()
            r = evaluate_cascade(1, code, REF, LIMITS, warm=warm)
            walls[label].append(time.perf_counter() - t0)
            assert r.ok  # type: ignore[attr-defined]
    reference = statistics.median(in_process)
    rows = [["in-process (the reference)", _spread(in_process), "1.000"]]
    rows += [[label, _spread(w), f"{statistics.median(w) / reference:.3f}"] for label, w in walls.items()]
    table = markdown(["path", f"wall time, median [range] of {REPEATS}", "median / in-process"], rows)
    print(f"P1 ({describe(LIMITS.isolation)['summary']}), the AdamW seed through the search stages")
    print(table)
    publish("eval-p1", table, ("benchmarks/RESULTS.md",))


def p2() -> None:
    seeds = REF.load().seed_programs()
    codes = [seeds[n] for n in ("sgd", "momentum", "adam", "adamw", "rmsprop", "adafactor", "lion", "nesterov")]
    print(f"P2: {len(codes)} candidates, 2 at a time")
    rows = []
    for warm in (True, False):
        with ThreadPoolExecutor(2) as pool:  # servers start inside the timed window: a cold start counts
            t0 = time.perf_counter()
            results = list(pool.map(lambda c, w=warm: evaluate_cascade(1, c, REF, LIMITS, warm=w), codes))
            wall = time.perf_counter() - t0
        assert all(r.fitness is not None for r in results)  # type: ignore[attr-defined]
        label = "warm fork server" if warm else "fresh interpreter per candidate stage (OpenEvolve / Shinka style)"
        rows.append([label, f"{wall:.1f} s", f"{3600 * len(codes) / wall:.0f}"])
    table = markdown(["path", "wall time (one run)", "candidates / hour"], rows)
    print(table)
    publish("eval-p2", table, ("benchmarks/RESULTS.md",))


if __name__ == "__main__":
    parts = sys.argv[1:] or ["p1", "p2"]
    if "p1" in parts:
        p1()
    if "p2" in parts:
        p2()
