"""The optimizer zoo under the current harness: every seed program's search, validated and held-out
fitness and its per-task scores, through the sandboxed cascade (`evolve baselines`). Writes the
tables into README.md and benchmarks/RESULTS.md (markers zoo and zoo-tasks).

Usage: .venv/bin/python benchmarks/zoo.py [--parallel 2]   (about 25 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tables import ROOT, fmt, markdown, publish  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()
    t0 = time.perf_counter()
    proc = subprocess.run([str(ROOT / ".venv/bin/evolve"), "baselines", "--stages", "search,validate,heldout",
                           "--parallel", str(args.parallel), "--json"], capture_output=True, text=True, check=True)
    rows = json.loads(proc.stdout)
    minutes = (time.perf_counter() - t0) / 60
    table = markdown(["seed", "search", "validated", "held-out"],
                     [[r["seed"] + (" (textbook beta2 0.999, on the grid)" if r["seed"] == "adamw" else ""),
                       fmt(r["search"]["fitness"]), fmt(r["validate"]["fitness"]), fmt(r["heldout"]["fitness"])]
                      for r in rows])
    tasks = list(dict.fromkeys(t for r in rows for t in r["task_scores"]))
    per_task = markdown(["seed", *tasks],
                        [[r["seed"], *[fmt(r["task_scores"].get(t), 2) for t in tasks]] for r in rows])
    note = f"\n\n`.venv/bin/python benchmarks/zoo.py` ({minutes:.0f} min on 2 cores)."
    publish("zoo", table + note)
    publish("zoo-tasks", per_task, ("benchmarks/RESULTS.md",))
    print(table)
    print()
    print(per_task)


if __name__ == "__main__":
    main()
