"""Seconds per candidate for each optimizer_discovery stage, and the speedup of the vmapped LR sweep.

Runs the AdamW seed in-process, single-threaded, once vectorised over the 9-point LR grid and once
sequentially over the same grid, for every task of the CPU suite (filter, select, validate, held-out).
Usage: .venv/bin/python benchmarks/optimizer_stage_cost.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from evolve.loader import builtin_problems, load_problem_folder  # noqa: E402
from problems.optimizer_discovery.problem import load_rule  # noqa: E402
from problems.optimizer_discovery.suites import SUITES, get_task  # noqa: E402
from problems.optimizer_discovery.train import LR_GRID, train  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    problem = load_problem_folder(builtin_problems()["optimizer_discovery"], {})
    init_state, update = load_rule(problem.seed_programs()["adamw"])
    print(f"{'stage':8} {'task':18} {'steps':>5} {'vmap s/seed':>11} {'seq s/seed':>10} {'speedup':>7}")
    for stage, tasks in SUITES["cpu"].items():
        total = 0.0
        for name in tasks:
            task = get_task(name)
            train(task, init_state, update, 0, 5, LR_GRID)  # warm-up (first vmap call traces)
            t0 = time.perf_counter()
            train(task, init_state, update, 0, task.steps, LR_GRID, vectorise=True)
            vec = time.perf_counter() - t0
            seq = float("nan")
            if stage in ("filter", "select"):
                t0 = time.perf_counter()
                train(task, init_state, update, 0, task.steps, LR_GRID, vectorise=False)
                seq = time.perf_counter() - t0
            total += vec * len(problem.seeds[stage])
            print(f"{stage:8} {name:18} {task.steps:>5} {vec:>11.2f} {seq:>10.2f} {seq / vec:>7.2f}")
        print(f"stage {stage}: {total:.1f} s of training per candidate ({len(problem.seeds[stage])} seeds, 9 LRs)")


if __name__ == "__main__":
    main()
