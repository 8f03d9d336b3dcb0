from pathlib import Path
from typing import Any

from evolve.problem import ContractError, Descriptor, Primitives, Problem, Stage, StageScore

SEED = """
# EVOLVE-BLOCK-START
def guess():
    return 0.5
# EVOLVE-BLOCK-END
"""


class GuessThree(Problem):
    name = "guess_three"
    version = "1"  # bump when scoring changes
    description = "Write guess() returning a float; fitness is -(x - 3)**2."
    descriptors = (Descriptor("x", -10, 10, 20),)
    stages = (Stage("main", timeout_s=10),)
    allowed_imports = frozenset({"math"})
    primitives = Primitives(binary_ops=("+", "-", "*"), calls=("abs",), constants=(1.0, 2.0))

    def seed_programs(self) -> dict[str, str]:
        return {"half": SEED}

    def run_stage(self, code: str, stage: str, workdir: Path) -> dict[str, Any]:
        namespace: dict[str, Any] = {}
        exec(compile(code, "candidate.py", "exec"), namespace)
        return {"x": float(namespace["guess"]())}

    def score(self, code: str, stage: str, artifacts: dict[str, Any]) -> StageScore:
        x = artifacts.get("x")
        if not isinstance(x, float):
            raise ContractError("x must be a float")
        return StageScore(fitness=-((x - 3.0) ** 2), metrics={"x": x}, descriptors={"x": x})


def make_problem(folder: Path, options: dict[str, Any]) -> Problem:
    return GuessThree(folder, options)
