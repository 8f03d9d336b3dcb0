"""Running one job: the stages of its role, each in a sandbox child, each scored by trusted code.

The one evaluation path: a run's children, fingerprints and validations, `evolve heldout` and
`evolve baselines` all come through :func:`evaluate`.
"""

from __future__ import annotations

import math
import time

from evaluators.jobs import EvalJob, EvalResult, JobKind
from evaluators.sandbox import Limits, Sandbox
from evolve.loader import ProblemRef
from evolve.problem import ContractError, Problem, Stage
from evolve.program import FailureKind


def stages_for(problem: Problem, kind: JobKind) -> tuple[Stage, ...]:
    if kind == JobKind.SEARCH:
        return problem.stages
    stage = {JobKind.FINGERPRINT: problem.fingerprint, JobKind.VALIDATE: problem.validate,
             JobKind.HELDOUT: problem.heldout}[kind]
    return (stage,) if stage is not None else ()


def evaluate(job: EvalJob, ref: ProblemRef, limits: Limits, isolate: bool = True, warm: bool = False) -> EvalResult:
    problem = ref.load()
    sandbox = Sandbox(limits, isolate=isolate, warm=warm)
    result = EvalResult(job.program_id, ok=False, kind=job.kind, started_at=time.time())
    stages = stages_for(problem, job.kind)
    if not stages:
        result.failure_kind, result.reason = FailureKind.CONTRACT, f"problem {problem.name} has no {job.kind} stage"
        return result
    t0 = time.monotonic()
    outputs = []
    for stage in stages:
        run = sandbox.run(ref.folder, ref.options, job.code, stage)
        outputs.append(run.output)
        result.stage_reached = stage.name
        if run.artifacts is None:
            result.failure_kind, result.reason = run.failure, f"stage {stage.name}: {run.message}"
            break
        try:
            if job.kind == JobKind.FINGERPRINT:
                result.fingerprint, result.ok = problem.fingerprint_of(run.artifacts), True
                break
            score = problem.score(job.code, stage.name, run.artifacts)
        except ContractError as exc:
            result.failure_kind = FailureKind.parse(getattr(exc, "kind", "contract"))
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
    result.output = "\n".join(o for o in outputs if o)[-limits.max_output_chars:] if limits.max_output_chars else ""
    result.seconds = time.monotonic() - t0
    return result
