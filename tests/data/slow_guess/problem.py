"""guess_three (the documented example) with a one-second evaluation: keeps work in flight for the
multi-node test."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

from evolve.problem import Problem

_spec = importlib.util.spec_from_file_location("guess_three_problem", Path(__file__).parent.parent / "guess_three" / "problem.py")
assert _spec and _spec.loader
_guess_three = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_guess_three)


class SlowGuess(_guess_three.GuessThree):  # type: ignore[misc, name-defined]
    name = "slow_guess"

    def run_stage(self, code: str, stage: str, workdir: Path) -> dict[str, Any]:
        time.sleep(1.0)
        return super().run_stage(code, stage, workdir)


def make_problem(folder: Path, options: dict[str, Any]) -> Problem:
    return SlowGuess(folder, options)
