"""function_min: evolve a black-box search heuristic that minimises the Rastrigin function.

A small, fast, fully offline problem for exercising the engine. The candidate's ``search(f, dim,
budget, rng)`` returns the best point it found; the harness counts calls to ``f`` (a program that
goes over the budget breaks the contract) and the trusted ``score`` recomputes the function value
of the returned points itself, so a program cannot report a better value than it found.
"""

from __future__ import annotations

import ast
import hashlib
import math
import random
from pathlib import Path
from typing import Any

from evolve.problem import (
    BlockTypes,
    ContractError,
    Descriptor,
    Kind,
    Primitives,
    Problem,
    Signature,
    Stage,
    StageScore,
)

DOMAIN = 5.12


def rastrigin(x: list[float]) -> float:
    return 10.0 * len(x) + sum(xi * xi - 10.0 * math.cos(2.0 * math.pi * xi) for xi in x)


def shifted(trial: int, dim: int, x: list[float]) -> float:
    """Rastrigin moved to a per-trial optimum the candidate never sees (no shortcut to the origin)."""
    shift = random.Random(1000 + trial).uniform
    offsets = [shift(-2.5, 2.5) for _ in range(dim)]
    return rastrigin([min(DOMAIN, max(-DOMAIN, float(v))) - o for v, o in zip(x, offsets, strict=True)])


class BudgetExceeded(ContractError):
    pass


class FunctionMin(Problem):
    name = "function_min"
    version = "1"
    description = (
        "Write search(f, dim, budget, rng): minimise the black-box function f over the box "
        f"[-{DOMAIN}, {DOMAIN}]^dim with at most `budget` calls to f, using only the random.Random "
        "instance rng for randomness, and return the best point as a list of floats. "
        "The function is a shifted Rastrigin function (many local minima, global minimum 0 at an unknown point). "
        "Fitness is -log10(1 + f(x)) averaged over several independent trials: higher is better."
    )
    descriptors = (
        Descriptor("ast_nodes", 20, 420, 8, "size of search() in AST nodes"),
        Descriptor("calls", 0, 40, 8, "function calls in search()"),
    )
    fingerprint = Stage("fingerprint")  # the sequence of points searched on a probe trial
    stages = (Stage("quick", threshold=-1.6), Stage("full"))
    heldout = Stage("heldout")  # twice the dimension, unseen trials: does the heuristic generalise?
    allowed_imports = frozenset({"math", "random"})
    # search(f, dim, budget, rng): the dimension and the budget are ints (f and rng: not modelled)
    block_types = BlockTypes(
        functions=(
            (
                "search",
                Signature(
                    params=(("f", None), ("dim", Kind.NUMBER), ("budget", Kind.NUMBER), ("rng", None)), returns=()
                ),
            ),
        )
    )
    primitives = Primitives(
        binary_ops=("+", "-", "*", "/"),
        calls=("abs", "math.sqrt", "math.exp", "math.cos", "math.log1p"),
        constants=(0.1, 0.5, 0.9, 0.99, 1.0, 2.0),
    )

    def __init__(self, folder: Path, options: dict[str, Any]) -> None:
        super().__init__(folder, options)
        unknown = set(options) - {"dim", "budget", "trials"}
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)}; known: dim, budget, trials")
        self.dim = int(options.get("dim", 5))
        self.budget = int(options.get("budget", 2000))
        self.trials = int(options.get("trials", 4))

    def seed_programs(self) -> dict[str, str]:
        return {"random_local_search": (self.folder / "initial_program.py").read_text()}

    def _trials(self, stage: str) -> list[int]:
        if stage == "heldout":
            return list(range(100, 100 + self.trials))
        return [0] if stage == "quick" else list(range(1, self.trials + 1))

    def _dim(self, stage: str) -> int:
        return 2 * self.dim if stage == "heldout" else self.dim

    def run_stage(self, code: str, stage: str, workdir: Path) -> dict[str, Any]:
        namespace: dict[str, Any] = {"__name__": "candidate"}
        exec(compile(code, "candidate.py", "exec"), namespace)
        search = namespace.get("search")
        if not callable(search):
            raise ContractError("the program does not define search(f, dim, budget, rng)")
        if stage == "fingerprint":  # the whole query sequence on a probe trial, hashed as it goes
            queries = hashlib.sha256()
            point = self._search(search, -1, self.dim, queries)
            return {"queries": queries.hexdigest(), "point": [f"{v:.9g}" for v in point]}
        return {"points": [self._search(search, seed, self._dim(stage)) for seed in self._trials(stage)]}

    def _search(self, search: Any, seed: int, dim: int, queries: Any = None) -> list[float]:
        calls = 0

        def f(x: list[float]) -> float:
            nonlocal calls
            calls += 1
            if calls > self.budget:
                raise BudgetExceeded(f"search() called f more than budget={self.budget} times")
            if len(x) != dim:
                raise ContractError(f"f() takes a point of dimension {dim}")
            if queries is not None:
                queries.update(",".join(f"{float(v):.9g}" for v in x).encode() + b";")
            return shifted(seed, dim, x)

        x = search(f, dim, self.budget, random.Random(seed))
        try:
            return [float(v) for v in x]
        except (TypeError, ValueError):
            raise ContractError("search() must return a sequence of floats") from None

    def score(self, code: str, stage: str, artifacts: dict[str, Any]) -> StageScore:
        points = artifacts.get("points")
        expected, dim = len(self._trials(stage)), self._dim(stage)
        if (
            not isinstance(points, list)
            or len(points) != expected
            or any(not isinstance(p, list) or len(p) != dim for p in points)
        ):
            raise ContractError(f"expected {expected} points of dimension {dim}")
        values = [shifted(trial, dim, p) for trial, p in zip(self._trials(stage), points, strict=True)]
        fitness = -sum(math.log10(1.0 + v) for v in values) / len(values)
        return StageScore(fitness, {"mean_f": sum(values) / len(values), "best_f": min(values)}, _descriptors(code))


def _descriptors(code: str) -> dict[str, float]:
    tree = ast.parse(code)
    fn = next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "search"), tree)
    nodes = list(ast.walk(fn))
    return {"ast_nodes": float(len(nodes)), "calls": float(sum(isinstance(n, ast.Call) for n in nodes))}


def make_problem(folder: Path, options: dict[str, Any]) -> Problem:
    return FunctionMin(folder, options)
