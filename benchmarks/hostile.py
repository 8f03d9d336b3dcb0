"""The hostile-program suite (tests/data/hostile: attacks on the sandbox and the harness) through
`evolve baselines`, warm and fresh: how many are contained (each ends exactly as tests/test_hostile.py
expects: the attack fails, is classified, and scores the point it returned) out of how many.
Writes the table into benchmarks/RESULTS.md (marker hostile).
Usage: .venv/bin/python benchmarks/hostile.py   (about 4 minutes on 2 cores)
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "tests")]

import test_hostile as suite  # noqa: E402
from tables import ROOT, markdown, publish  # noqa: E402


def contained(name: str, row: dict, expected: object) -> bool:
    allowed = expected if isinstance(expected, set) else {expected}
    if row["failure_kind"] not in allowed:
        return False
    if row["failure_kind"] is None:
        point = [suite.POINTS.get(name, 0.0)] * 5
        return math.isclose(row["fitness"], suite._true_fitness(point, row["stage_reached"]), rel_tol=1e-9)
    return True


def main() -> None:
    rows, t0 = [], time.perf_counter()
    for warm in (True, False):
        made, unix = suite._plant()
        try:
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "evolve.cli",
                    "baselines",
                    str(ROOT / "tests/data/hostile"),
                    "--timeout-s",
                    "10",
                    "--warm" if warm else "--no-warm",
                    "--json",
                ],
                capture_output=True,
                text=True,
                timeout=1200,
                cwd=ROOT,
            )
        finally:
            unix.close()
            suite.SOCKET.unlink(missing_ok=True)
            for path in reversed(made):
                path.unlink() if path.is_file() else path.rmdir()
        results = {r["seed"]: r for r in json.loads(proc.stdout)}
        escaped = [n for n, r in results.items() if not contained(n, r, suite.EXPECTED.get(n, "?"))]
        rows.append(
            [
                "warm server" if warm else "fresh start",
                f"{len(results) - len(escaped)} / {len(results)}",
                ", ".join(escaped) or "none",
            ]
        )
        print(rows[-1], flush=True)
    table = markdown(["servers", "contained / total", "not contained"], rows, align="lrl")
    note = (
        f"\n\nOne run of each program of tests/data/hostile per server kind, measured {time.strftime('%Y-%m-%d')}. "
        "Contained: it ends exactly as tests/test_hostile.py expects (the attack fails, its failure is classified, "
        "and a program that survives scores only the point it returned). "
        f"`.venv/bin/python benchmarks/hostile.py` ({(time.perf_counter() - t0) / 60:.0f} min on 2 cores)."
    )
    publish("hostile", table + note, ("benchmarks/RESULTS.md",))
    print(table)


if __name__ == "__main__":
    main()
