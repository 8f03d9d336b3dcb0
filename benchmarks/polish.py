"""What the polish operator is worth (issue 18): the same searches with ``operators.polish.enabled`` off and on,
on several independent runs (run seeds), the same budget each.

    .venv/bin/python benchmarks/polish.py run DIR [--problem function_min] [--evaluations 200] [--runs 5]
    .venv/bin/python benchmarks/polish.py report DIR      # the table into benchmarks/RESULTS.md (marker: polish)

``run`` makes DIR/<problem>-<off|on>-<seed> with configs/<problem>.yaml (an existing run is resumed to the
budget); ``report`` reads every run's archive: the best search fitness (median and range over runs), the
share of trained children that were polish trials, and how many of the runs' new bests a polish trial made.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tables import ROOT, markdown, publish  # noqa: E402

EVOLVE = str(ROOT / ".venv/bin/evolve")
TRAINED = "status IN ('evaluated', 'failed') AND operator != 'seed' AND COALESCE(stage_reached, '') != 'fingerprint'"


def run(out: Path, problem: str, evaluations: int, runs: int) -> None:
    for seed in range(runs):
        for polish in ("off", "on"):
            run_dir = out / f"{problem}-{polish}-{seed}"
            if (run_dir / "archive.sqlite").exists():
                subprocess.run([EVOLVE, "resume", str(run_dir), "--max-evaluations", str(evaluations)], check=True)
                continue
            subprocess.run(
                [
                    EVOLVE,
                    "run",
                    str(ROOT / "configs" / f"{problem}.yaml"),
                    "--run-dir",
                    str(run_dir),
                    "--max-evaluations",
                    str(evaluations),
                    "--set",
                    f"seed={seed}",
                    "--set",
                    f"operators.polish.enabled={'true' if polish == 'on' else 'false'}",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )


def figures(run_dir: Path) -> dict[str, float]:
    db = sqlite3.connect(run_dir / "archive.sqlite")
    trained = db.execute(f"SELECT id, operator, fitness FROM programs WHERE {TRAINED} ORDER BY id").fetchall()
    seed = db.execute("SELECT fitness FROM programs WHERE operator = 'seed'").fetchone()[0]
    best, new_bests, by_polish = seed, 0, 0
    for _, operator, fitness in trained:
        if fitness is not None and fitness > best:
            best, new_bests = fitness, new_bests + 1
            by_polish += operator == "polish"
    return {
        "best": best,
        "trained": len(trained),
        "polish_share": sum(op == "polish" for _, op, _ in trained) / max(len(trained), 1),
        "new_bests": new_bests,
        "by_polish": by_polish,
    }


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


def report(out: Path) -> None:
    groups: dict[tuple[str, str], list[dict[str, float]]] = {}
    for run_dir in sorted(p for p in out.iterdir() if (p / "archive.sqlite").exists()):
        problem, polish, _ = run_dir.name.rsplit("-", 2)
        groups.setdefault((problem, polish), []).append(figures(run_dir))
    rows = []
    for (problem, polish), runs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] != "off")):
        rows.append(
            [
                problem,
                polish,
                str(len(runs)),
                f"{statistics.median(r['trained'] for r in runs):.0f}",
                _spread([r["best"] for r in runs]),
                f"{statistics.mean(r['polish_share'] for r in runs):.0%}",
                f"{sum(r['by_polish'] for r in runs)} of {sum(r['new_bests'] for r in runs)}",
            ]
        )
    table = markdown(
        [
            "problem",
            "polish",
            "runs",
            "trained children (median)",
            "best search fitness, median [range] over runs",
            "polish trials (share of trained)",
            "new bests made by polish",
        ],
        rows,
        "llrrrrr",
    )
    print(table)
    publish("polish", table, ("benchmarks/RESULTS.md",))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["run", "report"])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--problem", default="function_min")
    parser.add_argument("--evaluations", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.what == "run":
        run(args.dir, args.problem, args.evaluations, args.runs)
    report(args.dir)


if __name__ == "__main__":
    main()
