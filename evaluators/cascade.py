"""Cascade: run a program through the problem's stages, scoring each one with trusted code."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from evaluators.sandbox import Limits, Sandbox
from evolve.problem import ContractError, ProblemRef
from evolve.program import FailureKind


@dataclass
class EvalResult:
    """The outcome of one program's evaluation; plain data so that it crosses Ray unchanged."""

    program_id: int
    ok: bool
    fitness: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    descriptors: dict[str, float] = field(default_factory=dict)
    stage_reached: str | None = None
    failure_kind: FailureKind | None = None
    reason: str | None = None
    output: str = ""
    seconds: float = 0.0
    started_at: float = 0.0
    cached: bool = False  # answered by the cross-run evaluation cache (evaluators.cache)


def evaluate_cascade(program_id: int, code: str, ref: ProblemRef, limits: Limits,
                     isolate: bool = True, warm: bool = False) -> EvalResult:
    problem = ref.load()
    sandbox = Sandbox(limits, isolate=isolate, warm=warm)
    result = EvalResult(program_id, ok=False, started_at=time.time())
    t0 = time.monotonic()
    outputs = []
    for stage in problem.stages:
        run = sandbox.run(ref.folder, ref.options, code, stage.name, stage.timeout_s)
        outputs.append(run.output)
        result.stage_reached = stage.name
        if run.artifacts is None:
            result.failure_kind, result.reason = run.failure, f"stage {stage.name}: {run.message}"
            break
        try:
            score = problem.score(code, stage.name, run.artifacts)
        except ContractError as exc:
            result.failure_kind = FailureKind(getattr(exc, "kind", "contract"))
            result.reason = f"stage {stage.name}: {exc}"
            break
        if not math.isfinite(score.fitness):
            result.failure_kind, result.reason = FailureKind.NAN, f"stage {stage.name}: non-finite fitness"
            break
        result.metrics[stage.name] = {**score.metrics, "seconds": round(run.seconds, 4)}
        result.fitness, result.descriptors, result.ok = score.fitness, score.descriptors, True
        if stage.threshold is not None and score.fitness < stage.threshold:
            break
    if result.failure_kind is not None:
        result.ok = False
    result.output = "\n".join(o for o in outputs if o)[-limits.max_output_chars:] if outputs else ""
    result.seconds = time.monotonic() - t0
    return result
