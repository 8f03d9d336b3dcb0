"""The optimizer zoo under the current harness: every seed program's search, validated and held-out
fitness with 95% intervals over seeds, its compute ratio and per-task scores, through the sandboxed
cascade (`evolve baselines`), and how well each tier ranks the zoo's held-out fitness (Spearman).
Writes the tables into README.md and benchmarks/RESULTS.md (markers zoo, zoo-tasks, zoo-transfer).

Usage: .venv/bin/python benchmarks/zoo.py [--parallel 2]   (about 40 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scipy.stats import spearmanr  # noqa: E402
from tables import ROOT, fmt, markdown, publish  # noqa: E402


def with_interval(entry: dict[str, Any]) -> str:
    if entry.get("fitness") is None:
        return f"failed ({entry.get('failure_kind')})"
    iv = entry.get("interval")
    return f"{entry['fitness']:.3f} [{iv[0]:.2f}, {iv[1]:.2f}]" if iv else f"{entry['fitness']:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            str(ROOT / ".venv/bin/evolve"),
            "baselines",
            "--stages",
            "search,validate,heldout",
            "--parallel",
            str(args.parallel),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(proc.stdout)
    minutes = (time.perf_counter() - t0) / 60
    table = markdown(
        ["seed", "search (2 seeds)", "validated (3 seeds)", "held-out (3 seeds)", "compute vs AdamW"],
        [
            [
                r["seed"] + (" (textbook beta2 0.999)" if r["seed"] == "adamw" else ""),
                with_interval(r["search"]),
                with_interval(r["validate"]),
                with_interval(r["heldout"]),
                fmt(r["search"].get("compute_ratio"), 2),
            ]
            for r in rows
        ],
    )
    tasks = list(dict.fromkeys(t for r in rows for t in r["task_scores"]))
    per_task = markdown(
        ["seed", *tasks], [[r["seed"], *[fmt(r["task_scores"].get(t), 2) for t in tasks]] for r in rows]
    )
    scored = [r for r in rows if all(r[k]["fitness"] is not None for k in ("search", "validate", "heldout"))]
    held = [r["heldout"]["fitness"] for r in scored]
    rho = {k: spearmanr([r[k]["fitness"] for r in scored], held).statistic for k in ("search", "validate")}
    transfer = markdown(
        ["tier", "Spearman with held-out fitness"],
        [["search", f"{rho['search']:.2f}"], ["validate", f"{rho['validate']:.2f}"]],
    )
    note = (
        f"\n\nOne evaluation of each of the {len(rows)} programs per tier (intervals: 95% over that tier's seeds; "
        f"Spearman over the {len(scored)} that every tier scored). "
        "The fitness is the score of the mean loss over a tier's seeds; the interval is over the per-seed "
        "fitness (each seed against AdamW tuned on that seed alone), so a point can sit just outside its "
        "interval. `.venv/bin/python benchmarks/zoo.py` "
        f"({minutes:.0f} min on 2 cores)."
    )
    publish("zoo", table + note)
    publish("zoo-tasks", per_task, ("benchmarks/RESULTS.md",))
    publish("zoo-transfer", transfer, ("README.md", "benchmarks/RESULTS.md"))
    print(table, per_task, transfer, sep="\n\n")


if __name__ == "__main__":
    main()
