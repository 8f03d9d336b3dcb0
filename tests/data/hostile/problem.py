"""A problem whose seed programs are hostile candidates, for `evolve baselines tests/data/hostile`.

Same contract and trusted scoring as function_min (search(f, dim, budget, rng) -> point), but every
seed is an attack on the sandbox or on the harness, and the import allow-list is wide open so that
the runtime defences, not the static rules, are what is tested.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from evolve.problem import CodeRules, Problem
from problems.function_min.problem import FunctionMin


class Hostile(FunctionMin):
    name = "hostile"
    allowed_imports = frozenset(sys.stdlib_module_names)
    code_rules = CodeRules(private_attributes=True, private_module_attributes=True)  # the runtime walls are tested

    def seed_programs(self) -> dict[str, str]:
        from evaluators import cgroups

        programs = {p.stem: p.read_text() for p in sorted((self.folder / "programs").glob("*.py"))}
        if not cgroups.available()["pids"]:  # without a pids cgroup a fork bomb would take the machine down
            programs.pop("fork_bomb")
        return programs


def make_problem(folder: Path, options: dict[str, Any]) -> Problem:
    return Hostile(folder, {"budget": 200, "trials": 1, **options})
