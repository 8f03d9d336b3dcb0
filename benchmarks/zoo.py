"""The optimizer zoo under the current harness: every seed program's search, validated and held-out
fitness with 95% intervals over seeds, its compute ratio and per-task scores, through the sandboxed
cascade (`evolve baselines`), and how well each tier ranks the zoo's held-out fitness (Spearman).
Writes the tables into README.md and benchmarks/RESULTS.md (markers zoo, zoo-tasks, zoo-transfer, zoo-loo) and
the raw scores into benchmarks/zoo.json.

Usage: .venv/bin/python benchmarks/zoo.py [--parallel 2] [--stages search,validate,heldout] [--only a,b]
(every program, all three tiers: about 45 min on 2 cores). The zoo is the problem's seed programs and the
textbook rules in benchmarks/zoo_programs/. ``--stages`` re-measures only the tiers named (after a change that
touches only their tasks), ``--only`` only the programs named (a program new to zoo.json: every tier); the
other scores stay as zoo.json holds them, and it records when each was measured.
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
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scipy.stats import spearmanr  # noqa: E402
from tables import ROOT, fmt, markdown, publish  # noqa: E402

from problems.optimizer_discovery.suites import SUITES  # noqa: E402

TIERS = ("search", "validate", "heldout")
RAW = ROOT / "benchmarks" / "zoo.json"


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


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def leave_one_out(scored: list[dict[str, Any]]) -> str:
    """Does one validate task decide? Per validate task: the validated fitness recomputed without it (the
    geometric mean of the other tasks' scores, as the stage aggregates them), ranked against the full
    validated fitness and against held-out."""
    tasks = SUITES["cpu"]["validate"]
    full = [r["validate"]["fitness"] for r in scored]
    held = [r["heldout"]["fitness"] for r in scored]
    rows = []
    for dropped in tasks:
        rest = [geomean([r["task_scores"][t] for t in tasks if t != dropped]) for r in scored]
        rows.append([dropped, f"{spearmanr(rest, full).statistic:.2f}", f"{spearmanr(rest, held).statistic:.2f}"])
    return markdown(["validate task left out", "Spearman with full validate", "Spearman with held-out"], rows)


def zoo_files() -> dict[str, Path]:
    """The zoo: the problem's seed programs and the textbook rules of benchmarks/zoo_programs/."""
    folders = (ROOT / "problems" / "optimizer_discovery" / "seeds", ROOT / "benchmarks" / "zoo_programs")
    return {f.stem: f for folder in folders for f in sorted(folder.glob("*.py"))}


def measure(stages: tuple[str, ...], parallel: int, only: tuple[str, ...]) -> list[dict[str, Any]]:
    """Score the zoo (or the programs ``only`` names) on these tiers; every other score, and when it was
    measured, from zoo.json. A program zoo.json does not hold yet is scored on every tier."""
    files = zoo_files()
    unknown = set(only) - set(files)
    if unknown:
        raise SystemExit(f"zoo.py: --only: no program {sorted(unknown)} (the zoo: {', '.join(files)})")
    partial = bool(only) or set(stages) != set(TIERS)
    old = json.loads(RAW.read_text()) if RAW.exists() and partial else {"rows": [], "measured": {}}
    kept = {r["seed"]: r for r in old["rows"]}
    names = only or tuple(files)
    if any(name not in kept for name in names):
        stages = TIERS
    t0 = time.perf_counter()
    command = [str(ROOT / ".venv/bin/evolve"), "baselines", "--stages", ",".join(stages), "--parallel", str(parallel)]
    for name in names:
        command += ["--program", str(files[name])]
    proc = subprocess.run([*command, "--json"], capture_output=True, text=True, check=True)
    fresh = {r["seed"]: r for r in json.loads(proc.stdout)}
    minutes = (time.perf_counter() - t0) / 60
    current = {t for role in SUITES["cpu"].values() for t in role}
    for name, row in fresh.items():
        merged = kept.get(name, {"seed": name, "task_scores": {}})
        for tier in stages:
            merged[tier] = row[tier]
        scores = {**merged["task_scores"], **row["task_scores"]}
        merged["task_scores"] = {t: v for t, v in scores.items() if t in current}
        kept[name] = merged
    rows = [kept[name] for name in files if name in kept]
    measured: dict[str, list[str]] = {t: list(v) for t, v in old["measured"].items()} if partial else {}
    which = "every program" if len(names) == len(files) else ", ".join(names)
    for tier in stages:
        measured.setdefault(tier, []).append(
            f"{time.strftime('%Y-%m-%d')} ({which}; {len(stages)} tier(s) in {minutes:.0f} min on 2 cores)"
        )
    RAW.write_text(json.dumps({"measured": measured, "rows": rows}, indent=1) + "\n")  # the raw scores, to re-read
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--stages", default=",".join(TIERS), help="the tiers to re-measure (others from zoo.json)")
    parser.add_argument("--tables-only", action="store_true", help="re-publish the tables from zoo.json")
    parser.add_argument("--only", default="", help="re-measure these programs only (comma-separated names)")
    args = parser.parse_args()
    stages = tuple(s for s in args.stages.split(",") if s)
    if not set(stages) <= set(TIERS):
        parser.error(f"--stages: pick from {', '.join(TIERS)}")
    only = tuple(s for s in args.only.split(",") if s)
    rows = json.loads(RAW.read_text())["rows"] if args.tables_only else measure(stages, args.parallel, only)
    measured = json.loads(RAW.read_text())["measured"]
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
    when = "; ".join(f"{tier} {', '.join(measured.get(tier, ['never']))}" for tier in TIERS)
    note = (
        f"\n\nOne evaluation of each of the {len(rows)} programs per tier (intervals: 95% over that tier's seeds; "
        f"Spearman over the {len(scored)} that every tier scored). "
        "The fitness is the score of the mean loss over a tier's seeds; the interval is over the per-seed "
        "fitness (each seed against AdamW tuned on that seed alone), so a point can sit just outside its "
        f"interval. `.venv/bin/python benchmarks/zoo.py` (measured: {when})."
    )
    loo = leave_one_out(scored)
    publish("zoo", table + note)
    publish("zoo-tasks", per_task, ("benchmarks/RESULTS.md",))
    publish("zoo-transfer", transfer, ("README.md", "benchmarks/RESULTS.md"))
    publish("zoo-loo", loo, ("benchmarks/RESULTS.md",))
    print(table, per_task, transfer, loo, sep="\n\n")


if __name__ == "__main__":
    main()
