"""Load a folder in OpenEvolve's layout as a Problem, without edits.

The layout: ``initial_program.py`` (with EVOLVE-BLOCK markers) and ``evaluator.py`` exposing
``evaluate(program_path) -> dict`` of metrics, optionally ``evaluate_stage1/2/3(program_path)``
for a cascade. Fitness is the ``combined_score`` metric when present, else the mean of the
numeric metrics (OpenEvolve's own rule). Optional ``config.yaml`` is not read: use evolve's config.

Trust: in this layout the evaluator computes the metrics itself, usually in the same process as
the candidate, so the sandbox child runs both and the metrics are only as trustworthy as that
evaluator. Native problems (``problem.py``) score outside the candidate's process instead.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from typing import Any

from evolve.problem import ContractError, Problem, Stage, StageScore


def is_openevolve_folder(folder: Path) -> bool:
    return (folder / "initial_program.py").is_file() and (folder / "evaluator.py").is_file()


def _stage_functions(folder: Path) -> list[str]:
    text = (folder / "evaluator.py").read_text()
    staged = [f"evaluate_stage{i}" for i in (1, 2, 3) if f"def evaluate_stage{i}(" in text]
    return staged or ["evaluate"]


class OpenEvolveProblem(Problem):
    version = "openevolve-layout"

    def __init__(self, folder: Path, options: dict[str, Any]) -> None:
        super().__init__(folder, options)
        self.name = folder.name
        self.description = (folder / "README.md").read_text()[:4000] if (folder / "README.md").is_file() else \
            f"Improve the program in {folder.name}; fitness is its evaluator's combined_score."
        self.stages = tuple(Stage(fn) for fn in _stage_functions(folder))
        # OpenEvolve programs import whatever they like: keep only the escape-hatch rules.
        self.allowed_imports = frozenset(options.get("allowed_imports", sys.stdlib_module_names | {"numpy"}))

    def seed_programs(self) -> dict[str, str]:
        return {"initial_program": (self.folder / "initial_program.py").read_text()}

    def run_stage(self, code: str, stage: str, workdir: Path) -> dict[str, Any]:
        program = workdir / "program.py"
        program.write_text(code)
        spec = importlib.util.spec_from_file_location("openevolve_evaluator", self.folder / "evaluator.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(self.folder))
        spec.loader.exec_module(module)
        fn = getattr(module, stage, None)
        if not callable(fn):
            raise ContractError(f"evaluator.py has no {stage}()")
        result = fn(str(program))
        metrics = getattr(result, "metrics", result)  # OpenEvolve's EvaluationResult or a plain dict
        if not isinstance(metrics, dict):
            raise ContractError(f"{stage}() returned {type(metrics).__name__}, expected a dict of metrics")
        return {"metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}}

    def score(self, code: str, stage: str, artifacts: dict[str, Any]) -> StageScore:
        metrics = artifacts.get("metrics")
        if not isinstance(metrics, dict):
            raise ContractError("no metrics")
        if "error" in metrics and "combined_score" not in metrics:
            raise ContractError(f"evaluator reported an error: {metrics['error']}")
        numeric = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if "combined_score" in numeric:
            fitness = numeric["combined_score"]
        elif numeric:
            fitness = sum(numeric.values()) / len(numeric)
        else:
            raise ContractError("the evaluator returned no numeric metric")
        if not math.isfinite(fitness):
            raise ContractError("non-finite fitness")
        return StageScore(fitness, metrics, {})
