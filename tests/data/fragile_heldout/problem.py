"""A problem whose held-out scoring is fragile on purpose: it rejects some programs' artifacts as a
contract error and returns NaN for others (tests that `evolve heldout` reports, not crashes)."""

from pathlib import Path
from typing import Any

from evolve.problem import ContractError, Descriptor, Primitives, Problem, Stage, StageScore

SEED = '''
# EVOLVE-BLOCK-START
def guess():
    return 0.5
# EVOLVE-BLOCK-END
'''


class FragileHeldout(Problem):
    name = "fragile_heldout"
    version = "1"
    description = "Write guess() returning a float."
    descriptors = (Descriptor("x", -10, 10, 40),)
    stages = (Stage("main", timeout_s=10),)
    heldout = Stage("heldout", timeout_s=10)
    allowed_imports = frozenset({"math"})
    primitives = Primitives(binary_ops=("+", "-", "*"), calls=("abs",), constants=(1.0, 2.0))

    def seed_programs(self) -> dict[str, str]:
        return {"half": SEED}

    def run_stage(self, code: str, stage: str, workdir: Path) -> dict[str, Any]:
        namespace: dict[str, Any] = {}
        exec(compile(code, "candidate.py", "exec"), namespace)
        return {"x": float(namespace["guess"]())}

    def score(self, code: str, stage: str, artifacts: dict[str, Any]) -> StageScore:
        x = artifacts["x"]
        if stage == "heldout" and int(abs(x) * 1000) % 3 == 0:
            raise ContractError("held-out scoring refuses this one")
        if stage == "heldout" and int(abs(x) * 1000) % 3 == 1:
            return StageScore(fitness=float("nan"))
        return StageScore(fitness=-abs(x - 3.0), metrics={"x": x}, descriptors={"x": x})


def make_problem(folder: Path, options: dict[str, Any]) -> Problem:
    return FragileHeldout(folder, options)
