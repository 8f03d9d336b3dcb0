"""The optimizer zoo under the current harness: every seed program's search, validated and held-out
fitness with 95% intervals over seeds, its compute ratio and per-task scores, through the sandboxed
cascade (`evolve baselines`), and how well each tier ranks the zoo's held-out fitness (Spearman).
Writes the tables into README.md and benchmarks/RESULTS.md (markers zoo, zoo-tasks, zoo-transfer) and the
raw scores into benchmarks/zoo.json.

Usage: .venv/bin/python benchmarks/zoo.py [--parallel 2]   (about an hour on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import math
import random
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


BOOTSTRAP = 2000


def bootstrap(scored: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Spearman of each tier with held-out, and their difference, over programs drawn with replacement (the
    zoo is a small sample of rules: a swap of two neighbours moves a rank correlation over ten by 0.01-0.1)."""
    rng = random.Random(0)
    out: dict[str, list[float]] = {"search": [], "validate": [], "difference": []}
    for _ in range(BOOTSTRAP):
        draw = [rng.choice(scored) for _ in scored]
        held = [r["heldout"]["fitness"] for r in draw]
        if len(set(held)) < 3:
            continue
        rho = {k: spearmanr([r[k]["fitness"] for r in draw], held).statistic for k in ("search", "validate")}
        if all(math.isfinite(v) for v in rho.values()):
            out["search"].append(rho["search"])
            out["validate"].append(rho["validate"])
            out["difference"].append(rho["validate"] - rho["search"])
    return out


def _range(values: list[float]) -> str:
    ordered = sorted(values)
    lo, hi = ordered[int(0.025 * len(ordered))], ordered[int(0.975 * len(ordered)) - 1]
    return f"[{lo:+.2f}, {hi:+.2f}]"


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
    (ROOT / "benchmarks" / "zoo.json").write_text(json.dumps(rows, indent=1) + "\n")  # the raw scores, to re-read
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
    spread = bootstrap(scored)
    transfer = markdown(
        ["tier", "Spearman with held-out fitness", f"95% bootstrap over programs ({BOOTSTRAP} draws)"],
        [
            ["search", f"{rho['search']:.2f}", _range(spread["search"])],
            ["validate", f"{rho['validate']:.2f}", _range(spread["validate"])],
            ["validate - search", f"{rho['validate'] - rho['search']:+.2f}", _range(spread["difference"])],
        ],
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
