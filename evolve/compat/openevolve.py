"""A folder in OpenEvolve's layout, run unchanged: ``initial_program.py`` (EVOLVE-BLOCK markers) and
``evaluator.py`` with ``evaluate(program_path)`` and optionally ``evaluate_stage1/2/3``; an optional
``config.yaml`` supplies the cascade thresholds (and defaults for evolve's config, see
:mod:`evolve.compat.openevolve_config`).

OpenEvolve's own rules are kept: with stage functions, stage 1 must reach ``cascade_thresholds[0]``
before stage 2 runs, the stages' numeric metrics (not ``error``) are merged, and so on; a threshold is
compared with ``combined_score``, else with the mean of the numeric metrics. Fitness is
``combined_score``, else the mean of the numeric (non-bool) metrics. An evaluator may return a dict
or an ``EvaluationResult`` (metrics + artifacts); artifacts are stored with the program and shown to
the LLM with its next mutation.

Trust: the evaluator runs in the sandbox child; the candidate runs in a jail of its own and answers the
evaluator's calls through plain data (evolve/compat/separate.py), so it cannot set its own score. Where
no second jail can be had the candidate shares the evaluator's process, as in OpenEvolve, and the run
says its fitness is self-reported.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import sys
from pathlib import Path
from typing import Any

import yaml

from evolve.compat import separate
from evolve.problem import CodeRules, ContractError, Problem, ProblemError, Stage, StageScore

SHIMS = Path(__file__).resolve().parent / "shims"
STAGE_FUNCTIONS = ("evaluate_stage1", "evaluate_stage2", "evaluate_stage3")
DEFAULT_THRESHOLDS = (0.5, 0.75, 0.9)  # OpenEvolve's defaults


def is_openevolve_folder(folder: Path) -> bool:
    return (folder / "initial_program.py").is_file() and (folder / "evaluator.py").is_file()


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.yaml"
    if not path.is_file():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ProblemError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise ProblemError(f"{path}: top level must be a mapping")
    return loaded


def numeric(metrics: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in skip and not math.isnan(float(v))
    }


def passes(metrics: dict[str, Any], threshold: float) -> bool:
    """OpenEvolve's cascade test: combined_score, else the mean of the numeric metrics but ``error``
    (booleans counted)."""
    score = metrics.get("combined_score")
    if isinstance(score, (int, float)):
        return float(score) >= threshold
    values = [float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and k != "error"]
    return bool(values) and sum(values) / len(values) >= threshold


def fitness_of(metrics: dict[str, Any]) -> float:
    """OpenEvolve's fitness: combined_score, else the mean of the numeric, non-bool metrics."""
    score = metrics.get("combined_score")
    if isinstance(score, (int, float)) and not isinstance(score, bool):
        return float(score)
    values = list(numeric(metrics).values())
    return sum(values) / len(values) if values else 0.0


def text_artifacts(artifacts: Any) -> dict[str, str]:
    if not isinstance(artifacts, dict):
        return {}
    out = {}
    for key, value in artifacts.items():
        out[str(key)] = (
            value.decode("utf-8", errors="replace")
            if isinstance(value, bytes)
            else value
            if isinstance(value, str)
            else str(value)
        )
    return out


def on_evaluator_path(folder: Path) -> None:
    """Inside the sandbox child: the folder's own modules and the openevolve/shinka stand-ins importable."""
    for entry in (str(folder), str(SHIMS)):
        if entry not in sys.path:
            sys.path.insert(0, entry)


class OpenEvolveProblem(Problem):
    # Arbitrary Python with classes of its own (self._cache...); a module's private names stay closed.
    code_rules = CodeRules(private_attributes=True)
    fitness_source = "separated"  # trusted where the candidate gets a jail of its own (evolve/compat/separate.py)

    def __init__(self, folder: Path, options: dict[str, Any]) -> None:
        super().__init__(folder, options)
        self.name = folder.name
        evaluator = (folder / "evaluator.py").read_text()
        self.version = "openevolve-" + hashlib.sha256(evaluator.encode()).hexdigest()[:10]
        config = read_config(folder)
        message = (config.get("prompt") or {}).get("system_message")
        readme = folder / "README.md"
        self.description = (
            message
            if isinstance(message, str) and message.strip()
            else readme.read_text()[:4000]
            if readme.is_file()
            else f"Improve the program in {folder.name}; fitness is its evaluator's combined_score."
        )
        evaluator_cfg = config.get("evaluator") or {}
        self.cascade = (
            [f for f in STAGE_FUNCTIONS if f"def {f}(" in evaluator]
            if evaluator_cfg.get("cascade_evaluation", True)
            else []
        )
        self.thresholds = tuple(float(t) for t in evaluator_cfg.get("cascade_thresholds", DEFAULT_THRESHOLDS))
        timeout = float(evaluator_cfg.get("timeout", 300))  # per evaluator call, as in OpenEvolve
        self.stages = (Stage("cascade" if self.cascade else "evaluate", timeout_s=timeout * max(1, len(self.cascade))),)
        # A folder's programs import what they like: the standard library plus whatever the seed imports
        # (added by the engine); problem.allowed_imports extends it. The sandbox contains them.
        self.allowed_imports = frozenset(sys.stdlib_module_names)

    def seed_programs(self) -> dict[str, str]:
        return {"initial_program": (self.folder / "initial_program.py").read_text()}

    def _evaluator(self) -> Any:
        on_evaluator_path(self.folder)
        spec = importlib.util.spec_from_file_location("evaluation_module", self.folder / "evaluator.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["evaluation_module"] = module
        spec.loader.exec_module(module)
        return module

    @staticmethod
    def _call(module: Any, name: str, program: Path) -> tuple[dict[str, Any], dict[str, str]]:
        fn = getattr(module, name, None)
        if not callable(fn):
            raise ContractError(f"evaluator.py has no {name}()")
        result = fn(str(program))
        metrics = getattr(result, "metrics", result)  # an EvaluationResult or a plain dict
        if not isinstance(metrics, dict):
            raise ContractError(f"{name}() returned {type(result).__name__}, expected a dict or an EvaluationResult")
        return dict(metrics), text_artifacts(getattr(result, "artifacts", {}))

    def run_stage(self, code: str, stage: str, workdir: Path) -> dict[str, Any]:
        program = workdir / "program.py"
        if not separate.available():  # the peers' way: the evaluator loads the candidate itself
            program.write_text(code)
            return self._evaluate(program)
        program.write_text(separate.stand_in(code))
        with separate.candidate(code, workdir, self.folder):
            return self._evaluate(program)

    def _evaluate(self, program: Path) -> dict[str, Any]:
        module = self._evaluator()
        if not self.cascade:
            metrics, artifacts = self._call(module, "evaluate", program)
            return {"metrics": _jsonable(metrics), "artifacts": artifacts, "stages_run": ["evaluate"]}
        metrics, artifacts = self._call(module, self.cascade[0], program)
        run = [self.cascade[0]]
        for i, name in enumerate(self.cascade[1:]):
            if i >= len(self.thresholds) or not passes(metrics, self.thresholds[i]):
                break
            more, more_artifacts = self._call(module, name, program)
            merged = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and k != "error"}
            merged.update({k: float(v) for k, v in more.items() if isinstance(v, (int, float)) and k != "error"})
            metrics, artifacts = merged, {**artifacts, **more_artifacts}
            run.append(name)
        return {"metrics": _jsonable(metrics), "artifacts": artifacts, "stages_run": run}

    def score(self, code: str, stage: str, artifacts: dict[str, Any]) -> StageScore:
        metrics = artifacts.get("metrics")
        if not isinstance(metrics, dict):
            raise ContractError("the evaluator returned no metrics")
        if not numeric(metrics) and "error" in metrics:
            raise ContractError(f"the evaluator reported an error: {str(metrics['error'])[:500]}")
        fitness = fitness_of(metrics)
        if not math.isfinite(fitness):
            raise ContractError("non-finite fitness")
        stages_run = artifacts.get("stages_run")
        return StageScore(
            fitness,
            {
                **metrics,
                "artifacts": text_artifacts(artifacts.get("artifacts")),
                "stages_run": stages_run if isinstance(stages_run, list) else [],
            },
            {},
        )


def _jsonable(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics as JSON values (numpy scalars become floats; anything else its text)."""
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        if hasattr(v, "item") and not isinstance(v, (str, bytes)):
            try:
                v = v.item()
            except (ValueError, TypeError):
                v = str(v)
        if isinstance(v, float) and not math.isfinite(v):
            v = str(v)  # the child refuses non-finite artifacts; keep the fact as text
        out[str(k)] = v if isinstance(v, (int, float, str, bool)) or v is None else str(v)
    return out
