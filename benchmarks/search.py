"""Searches from the SGD and the AdamW seeds, MAP-Elites against random search, genetic operators only
(issue 9), and what their answers are worth on the held-out tasks.

    .venv/bin/python benchmarks/search.py run DIR [--evaluations 500]   # the four runs, one after another
    .venv/bin/python benchmarks/search.py report DIR                     # figures + tables into the docs

``run`` makes DIR/{sgd,adamw}-{map,random} with configs/optimizer_discovery.yaml (random search:
``islands.selection.random_search=true``). ``report`` scores each champion on the held-out tasks, and
the SGD MAP-Elites run's 20 best programs by search fitness too (the transfer check: Spearman
correlation between search and held-out fitness), then publishes the table (marker: search).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tables import ROOT, fmt, markdown, publish  # noqa: E402

EVOLVE = str(ROOT / ".venv/bin/evolve")
RUNS = [("sgd", "map"), ("sgd", "random"), ("adamw", "map"), ("adamw", "random")]
LIKE_FOR_LIKE = 300  # evaluations: a column that compares runs of different lengths at the same budget


def run(out: Path, evaluations: int) -> None:
    for seed, mode in RUNS:
        run_dir = out / f"{seed}-{mode}"
        if (run_dir / "archive.sqlite").exists():
            subprocess.run([EVOLVE, "resume", str(run_dir), "--max-evaluations", str(evaluations)], check=True)
            continue
        cmd = [
            EVOLVE,
            "run",
            str(ROOT / "configs/optimizer_discovery.yaml"),
            "--run-dir",
            str(run_dir),
            "--max-evaluations",
            str(evaluations),
            "--set",
            f"problem.seed_program={seed}",
        ]
        if mode == "random":
            cmd += ["--set", "islands.selection.random_search=true"]
        subprocess.run(cmd, check=True)


def _json(*args: str) -> Any:
    return json.loads(subprocess.run([EVOLVE, *args, "--json"], capture_output=True, text=True, check=True).stdout)


def spearman(a: list[float], b: list[float]) -> float:
    def ranks(xs: list[float]) -> list[float]:
        order = sorted(range(len(xs)), key=lambda i: xs[i])
        r = [0.0] * len(xs)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r

    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    var = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return cov / var if var else 0.0


def figures(run_dir: Path) -> dict[str, Any]:
    db = sqlite3.connect(run_dir / "archive.sqlite")
    q = lambda sql: db.execute(sql).fetchone()  # noqa: E731
    status = _json("status", str(run_dir))
    champion = status["champion"] or {}
    if champion.get("id") is not None and champion.get("heldout_fitness") is None:
        _json("heldout", str(run_dir), "-n", "1")
        champion = _json("status", str(run_dir))["champion"]
    finished = status["evaluations"]
    behaviour = status["rejections"].get("duplicate_behaviour", 0)
    failed = status["by_status"].get("failed", 0)
    created, updated = q("SELECT created_at, updated_at FROM run")
    return {
        "run": run_dir.name,
        "evaluations": finished,
        "best_search": q("SELECT MAX(fitness) FROM programs")[0],
        "champion": champion.get("id"),
        "champion_search": champion.get("fitness"),
        "champion_validated": champion.get("validated_fitness"),
        "champion_heldout": champion.get("heldout_fitness"),
        "fingerprint_hit_rate": behaviour / (behaviour + finished) if finished else 0.0,
        "failed_share": failed / finished if finished else 0.0,
        # counted in Python: archives written before the store wrote strict JSON may hold Infinity in metrics
        "validations": sum("validate" in json.loads(m) for (m,) in db.execute("SELECT metrics FROM programs")),
        "wall_s": updated - created,
        # like for like across budgets: the best among the first LIKE_FOR_LIKE children to finish
        "best_at": q(
            f"SELECT MAX(fitness) FROM (SELECT fitness FROM programs WHERE status IN ('evaluated','failed') "
            f"AND operator != 'seed' ORDER BY eval_finished_at LIMIT {LIKE_FOR_LIKE})"
        )[0],
        "first_over_one": q(
            "SELECT COUNT(*) FROM programs WHERE status IN ('evaluated','failed') "
            "AND operator != 'seed' "
            "AND id <= (SELECT MIN(id) FROM programs WHERE fitness >= 1.0 AND operator != 'seed')"
        )[0],
    }


def transfer(run_dir: Path, n: int = 20) -> dict[str, Any]:
    rows = _json("heldout", str(run_dir), "-n", str(n), "--by", "search")
    pairs = [(r["fitness"], r["heldout"]["fitness"]) for r in rows if "fitness" in r["heldout"]]
    rho = spearman([p[0] for p in pairs], [p[1] for p in pairs]) if pairs else None
    return {"programs": len(pairs), "spearman": rho, "pairs": pairs}


def report(out: Path) -> None:
    dirs = [out / f"{seed}-{mode}" for seed, mode in RUNS]
    rows = [figures(d) for d in dirs if (d / "archive.sqlite").exists()]
    table = markdown(
        [
            "run",
            "evaluations",
            f"best search after {LIKE_FOR_LIKE}",
            "best search",
            "champion (search / validated / held-out)",
            "first >= 1.0",
            "behaviour duplicates",
            "failed",
            "validations",
            "wall time",
        ],
        [
            [
                r["run"],
                str(r["evaluations"]),
                fmt(r["best_at"]),
                fmt(r["best_search"]),
                f"#{r['champion']}: {fmt(r['champion_search'])} / {fmt(r['champion_validated'])} / "
                f"{fmt(r['champion_heldout'])}",
                str(r["first_over_one"] or "–"),
                f"{100 * r['fingerprint_hit_rate']:.0f}%",
                f"{100 * r['failed_share']:.0f}%",
                str(r["validations"]),
                f"{r['wall_s'] / 60:.0f} min",
            ]
            for r in rows
        ],
    )
    sgd = out / "sgd-map"
    t = transfer(sgd) if sgd.exists() else {"programs": 0, "spearman": None}
    text = table + (
        f"\n\nTransfer: Spearman correlation between search and held-out fitness over the "
        f"{t['programs']} best programs (by search fitness) of sgd-map: **{fmt(t['spearman'], 2)}** "
        "(goal >= 0.5).\n\n`.venv/bin/python benchmarks/search.py run DIR && "
        ".venv/bin/python benchmarks/search.py report DIR`"
    )
    publish("search", text)
    print(text)
    (out / "figures.json").write_text(json.dumps({"runs": rows, "transfer": t}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["run", "report"])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--evaluations", type=int, default=500)
    args = parser.parse_args()
    if args.command == "run":
        run(args.dir, args.evaluations)
    else:
        report(args.dir)


if __name__ == "__main__":
    main()
