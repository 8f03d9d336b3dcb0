"""A folder in ShinkaEvolve's layout, run unchanged: ``initial.py`` (EVOLVE-BLOCK markers) and an
``evaluate.py`` script that ShinkaEvolve runs as ``python evaluate.py --program_path P --results_dir R``
(usually through ``shinka.core.run_shinka_eval``, which evolve provides on the evaluator's path).

The script runs inside the sandbox child with exactly those arguments; what it leaves in the results
folder is the outcome, as for ShinkaEvolve: ``correct.json`` (``correct``; a program that fails its
``validate_fn`` fails with that message) and ``metrics.json`` (``combined_score`` is the fitness;
``public`` and ``private`` are stored; ``text_feedback`` is stored and shown to the LLM with the
program's next mutation). As for OpenEvolve folders the candidate runs in a jail of its own, apart from
the script and its results folder (evolve/compat/separate.py), where one can be had.
"""

from __future__ import annotations

import hashlib
import json
import math
import runpy
import sys
from pathlib import Path
from typing import Any

from evolve.compat import separate
from evolve.compat.openevolve import on_evaluator_path
from evolve.problem import CodeRules, ContractError, Problem, Stage, StageScore

TIMEOUT_S = 300.0  # ShinkaEvolve's examples give an evaluation five minutes


def is_shinka_folder(folder: Path) -> bool:
    return (folder / "initial.py").is_file() and (folder / "evaluate.py").is_file()


class ShinkaProblem(Problem):
    # Arbitrary Python with classes of its own (self._cache...); a module's private names stay closed.
    code_rules = CodeRules(private_attributes=True)
    fitness_source = "separated"  # trusted where the candidate gets a jail of its own (evolve/compat/separate.py)

    def __init__(self, folder: Path, options: dict[str, Any]) -> None:
        super().__init__(folder, options)
        self.name = folder.name
        script = (folder / "evaluate.py").read_text()
        self.version = "shinka-" + hashlib.sha256(script.encode()).hexdigest()[:10]
        readme = folder / "README.md"
        self.description = (
            readme.read_text()[:4000]
            if readme.is_file()
            else f"Improve the program in {folder.name}; fitness is its evaluator's combined_score."
        )
        self.stages = (Stage("evaluate", timeout_s=TIMEOUT_S),)
        self.allowed_imports = frozenset(sys.stdlib_module_names)  # + the seed's imports (the engine adds them)

    def seed_programs(self) -> dict[str, str]:
        return {"initial": (self.folder / "initial.py").read_text()}

    def run_stage(self, code: str, stage: str, workdir: Path) -> dict[str, Any]:
        program, results = workdir / "main.py", workdir / "results"
        on_evaluator_path(self.folder)
        if not separate.available():  # the peers' way: the script loads the candidate itself
            program.write_text(code)
            return self._evaluate(program, results)
        program.write_text(separate.stand_in(code))
        with separate.candidate(code, workdir, self.folder):
            return self._evaluate(program, results)

    def _evaluate(self, program: Path, results: Path) -> dict[str, Any]:
        argv = sys.argv
        sys.argv = [str(self.folder / "evaluate.py"), "--program_path", str(program), "--results_dir", str(results)]
        try:
            runpy.run_path(str(self.folder / "evaluate.py"), run_name="__main__")
        except SystemExit as exc:  # a script may end with sys.exit(); only the files it left count
            if exc.code not in (None, 0) and not (results / "correct.json").is_file():
                raise ContractError(f"evaluate.py exited with {exc.code} and wrote no results") from None
        finally:
            sys.argv = argv
        return {"correct": _read(results / "correct.json"), "metrics": _read(results / "metrics.json")}

    def score(self, code: str, stage: str, artifacts: dict[str, Any]) -> StageScore:
        correct = artifacts.get("correct") if isinstance(artifacts.get("correct"), dict) else {}
        metrics = artifacts.get("metrics") if isinstance(artifacts.get("metrics"), dict) else {}
        assert isinstance(correct, dict) and isinstance(metrics, dict)
        if not correct.get("correct", False):
            error = correct.get("error") or "evaluate.py marked the program incorrect (no correct.json)"
            raise ContractError(str(error)[:2000])
        score = metrics.get("combined_score", 0.0)
        if not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(float(score)):
            raise ContractError(f"combined_score is {score!r}")
        feedback = metrics.get("text_feedback", "")
        feedback = "\n".join(map(str, feedback)) if isinstance(feedback, list) else str(feedback or "")
        kept = {k: v for k, v in metrics.items() if k not in ("text_feedback", "combined_score")}
        return StageScore(
            float(score),
            {"combined_score": float(score), **kept, "artifacts": {"text_feedback": feedback} if feedback else {}},
            {},
        )


def _read(path: Path) -> Any:
    """A results file as ShinkaEvolve reads it: missing or broken means empty."""
    try:
        return _plain_json(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def _plain_json(value: Any) -> Any:
    """Non-finite numbers as text (the sandbox child refuses non-finite results; the fact is kept)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_json(v) for v in value]
    return value
