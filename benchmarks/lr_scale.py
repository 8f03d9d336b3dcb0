"""Same LR treatment: tuned AdamW's direction times 10^(k/8), k = -3..3, through the candidates' LR sweep
(the 9-point grid, then eighth-decade steps around its best point, the refinement the baseline gets).
A rule that only rescales AdamW must score 1.0 whatever its scale: grid luck is gone.

For each task the direction is AdamW with the beta2 the baseline itself picked at N on those seeds, so k = 0
is the tuned baseline written as a candidate. Writes the table into benchmarks/RESULTS.md (marker lr-scale).
Usage: .venv/bin/python benchmarks/lr_scale.py [stage ...]   (default: filter select validate heldout;
minutes per stage on one core; the rows of stages not named are kept)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from tables import fmt, markdown, publish, published_rows  # noqa: E402

from evolve.loader import builtin_problems, load_problem_folder  # noqa: E402
from problems.optimizer_discovery.baselines import adamw_init, adamw_update  # noqa: E402

KS = (-3, -2, -1, 0, 1, 2, 3)


def scaled_adamw(problem: Any, stage: str, k: int) -> Any:
    def rule_for(name: str) -> Any:
        curve = problem.baseline(name, stage, problem.seeds[stage])
        _, beta2 = curve["best_config"][curve["budgets"].index(curve["n"])]
        inner, factor = adamw_update(beta2), 10 ** (k / 8)

        def update(param, grad, state, step, total_steps):  # type: ignore[no-untyped-def]
            direction, state = inner(param, grad, state, step, total_steps)
            return direction * factor, state

        return lambda: (adamw_init, update)

    return rule_for


def scores(stage: str, k: int) -> float:
    problem = load_problem_folder(builtin_problems()["optimizer_discovery"], {})
    return problem.score_in_process(stage, scaled_adamw(problem, stage, k)).fitness


STAGES = ("filter", "select", "validate", "heldout")


def main() -> None:
    torch.set_num_threads(1)
    stages = sys.argv[1:] or list(STAGES)
    rows = {row[0]: row for row in published_rows("lr-scale")}  # the stages not re-measured now are kept
    for stage in stages:
        t0 = time.perf_counter()
        values = [scores(stage, k) for k in KS]
        rows[stage] = [
            stage,
            *[fmt(v) for v in values],
            f"{max(abs(v - 1) for v in values):.1%}",
            f"{time.strftime('%Y-%m-%d')}, {(time.perf_counter() - t0) / 60:.0f} min",
        ]
        print(rows[stage], flush=True)
    ordered = [rows[s] for s in STAGES if s in rows]
    table = markdown(["stage", *[f"k={k}" for k in KS], "worst deviation from 1", "measured (wall time)"], ordered)
    note = (
        "\n\nTuned AdamW's direction times 10^(k/8), scored as a candidate (per task: the beta2 the baseline "
        "picked at N; the search stages on seeds {0, 1}, validate on 3 seeds, held-out on 3); one evaluation "
        "per cell. `.venv/bin/python benchmarks/lr_scale.py [stage ...]` re-measures the stages named."
    )
    publish("lr-scale", table + note, ("benchmarks/RESULTS.md",))
    print(table)


if __name__ == "__main__":
    main()
