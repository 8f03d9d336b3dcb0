"""How many of the genetic operators' children fail before any training, with the type check and without.

From each seed program of optimizer_discovery, a random walk of genetic children (ast_mutate 80%, ast_crossover
with another seed 20%, the operators and mix of the default config); each child is run through the problem's
behaviour probe (the fingerprint stage: the first thing a child runs). The walk moves to a child that passed the
probe with probability 1/2, so parents are evolved programs too, not only seeds. Run twice on the same random
streams: the operators as they are (the type check on) and with the problem's ``block_types`` removed (off).
For the children made without it, the check's verdict is compared with the probe's: a child the check refuses
but the probe passes would be a false refusal (the check promises none).

Usage: .venv/bin/python benchmarks/operator_validity.py [steps per seed] [walks]   (a minute on one core)
Writes the table into benchmarks/RESULTS.md (marker operator-validity).
"""

from __future__ import annotations

import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tables import markdown, publish  # noqa: E402

from evolve.config import OperatorsConfig  # noqa: E402
from evolve.loader import builtin_problems, load_problem_folder  # noqa: E402
from evolve.mutation.base import OperatorContext, OperatorFailed  # noqa: E402
from evolve.mutation.genetic import AstCrossover, AstMutate  # noqa: E402
from evolve.mutation.types import type_errors  # noqa: E402
from evolve.problem import Problem  # noqa: E402
from evolve.program import Program  # noqa: E402
from problems.optimizer_discovery.probe import probe  # noqa: E402
from problems.optimizer_discovery.problem import load_rule  # noqa: E402


class _Slow(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Slow


def probe_outcome(code: str) -> str:
    """'ok', or the exception type the probe raised (what the fingerprint stage would report)."""
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(10)
    try:
        probe(*load_rule(code))
        return "ok"
    except _Slow:
        return "timeout"
    except Exception as exc:  # noqa: BLE001 (every failure is a figure here)
        return type(exc).__name__
    finally:
        signal.alarm(0)


def walk(problem: Problem, seeds: dict[str, str], start: str, steps: int, walk_seed: int) -> list[dict[str, Any]]:
    cfg = OperatorsConfig()
    mutate, cross = AstMutate(cfg.mutations_per_child, cfg.max_attempts), AstCrossover(cfg.max_attempts)
    share = cfg.weights["ast_mutate"] / (cfg.weights["ast_mutate"] + cfg.weights["ast_crossover"])
    rng = np.random.default_rng(walk_seed)
    parent = Program(code=seeds[start], operator="seed", island=0)
    out = []
    for _ in range(steps):
        ctx = OperatorContext(problem, np.random.default_rng(int(rng.integers(2**63))))
        mating = rng.random() >= share
        other = Program(code=seeds[str(rng.choice(sorted(seeds)))], operator="seed", island=0)
        try:
            proposal = (cross if mating else mutate).propose([parent, other] if mating else [parent], ctx)
        except OperatorFailed:
            out.append({"child": None})
            continue
        outcome = probe_outcome(proposal.code)
        parents = [parent.code, other.code] if mating else [parent.code]
        out.append({"child": proposal.code, "outcome": outcome, "parents": parents})
        if outcome == "ok" and rng.random() < 0.5:
            parent = Program(code=proposal.code, operator="walk", island=0)
    return out


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    walks = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    torch.set_num_threads(1)
    problem = load_problem_folder(builtin_problems()["optimizer_discovery"], {})
    types = problem.block_types
    assert types is not None
    seeds = problem.seed_programs()
    rows, confusion = [], Counter[str]()
    for label, variant in (("on", problem), ("off", _without_types(problem))):
        results = [r for w in range(walks) for s in sorted(seeds) for r in walk(variant, seeds, s, steps, w)]
        made = [r for r in results if r["child"] is not None]
        failed = [r for r in made if r["outcome"] != "ok"]
        reasons = Counter(r["outcome"] for r in failed)
        rows.append(
            [
                label,
                str(len(results)),
                str(len(results) - len(made)),
                str(len(made)),
                str(len(failed)),
                f"{100 * len(failed) / max(1, len(made)):.1f}%",
                ", ".join(f"{k} {v}" for k, v in reasons.most_common(4)) or "–",
            ]
        )
        if label == "off":
            for r in made:
                inherited = {reason for p in r["parents"] for _, reason in type_errors(p, types)}
                refused = any(reason not in inherited for _, reason in type_errors(r["child"], types))
                confusion[f"{'refused' if refused else 'passed'}/{'ok' if r['outcome'] == 'ok' else 'failed'}"] += 1
    table = markdown(
        ["type check", "proposals", "no child", "children", "failed the probe", "failed share", "most common"], rows
    )
    caught, missed = confusion["refused/failed"], confusion["passed/failed"]
    note = (
        f"\n\n{walks} random walks of {steps} proposals from each of the {len(seeds)} seed programs per row (the same "
        "random streams in both rows). Without the check, the check would have refused "
        f"{caught} of the {caught + missed} children that failed the probe, and {confusion['refused/ok']} of the "
        f"{confusion['refused/ok'] + confusion['passed/ok']} that passed it (false refusals as far as the probe tells: "
        "the check promises that the refused line fails whenever it runs, and a branch the probe's shapes never "
        "take, such as one for 3-D parameters, does not run there). "
        f"`.venv/bin/python benchmarks/operator_validity.py {steps} {walks}`"
    )
    publish("operator-validity", table + note, ("benchmarks/RESULTS.md",))
    print(table + note)


def _without_types(problem: Problem) -> Problem:
    """The same problem object with the type check off (the operators read ``problem.block_types``)."""
    clone = object.__new__(type(problem))
    clone.__dict__.update(problem.__dict__)
    clone.block_types = None
    return clone


if __name__ == "__main__":
    main()
