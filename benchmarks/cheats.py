"""Every cheating rule of tests/data/optimizer_cheats (one per hole found in harness 3) next to the honest
SGD seed: its search fitness through the sandboxed cascade with the static rules out of the way (the
runtime walls alone), and whether the static rules refuse it before it runs. Writes the table into
benchmarks/RESULTS.md (marker cheats).
Usage: .venv/bin/python benchmarks/cheats.py   (about 10 minutes on one core)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tables import ROOT, fmt, markdown, publish  # noqa: E402

from evaluators.cascade import evaluate  # noqa: E402
from evaluators.jobs import EvalJob  # noqa: E402
from evaluators.static_rules import StaticRuleViolation, check_program  # noqa: E402
from evolve.config import EvaluatorConfig  # noqa: E402
from evolve.loader import ProblemRef, builtin_problems, load_problem_folder  # noqa: E402

FOLDER = builtin_problems()["optimizer_discovery"]


def main() -> None:
    t0 = time.perf_counter()
    problem = load_problem_folder(FOLDER, {})
    programs = {"sgd (honest seed)": problem.seed_programs()["sgd"]}
    programs |= {p.stem: p.read_text() for p in sorted((ROOT / "tests/data/optimizer_cheats").glob("*.py"))}
    rows = []
    for name, code in programs.items():
        try:
            check_program(code, problem.allowed_imports, problem.code_rules)
            refused = "no"
        except (SyntaxError, StaticRuleViolation) as exc:
            refused = f"yes ({getattr(exc, 'rule', 'syntax')})"
        r = evaluate(EvalJob(1, code), ProblemRef(str(FOLDER), {}), EvaluatorConfig(timeout_s=900, memory_mb=4096))
        outcome = fmt(r.fitness) if r.ok else f"failed: {r.failure_kind}"
        rows.append([name, refused, outcome, (r.reason or "")[:70].replace("|", "/")])
        print(rows[-1], flush=True)
    table = markdown(
        ["program", "refused by the static rules", "search fitness (runtime walls alone)", "why"], rows, align="llrl"
    )
    note = (
        f"\n\nOne evaluation each, search seeds {{0, 1}}. `.venv/bin/python benchmarks/cheats.py` "
        f"({(time.perf_counter() - t0) / 60:.0f} min)."
    )
    publish("cheats", table + note, ("benchmarks/RESULTS.md",))
    print(table)


if __name__ == "__main__":
    main()
