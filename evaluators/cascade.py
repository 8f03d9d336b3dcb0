"""Running one job: the stages of its role, each in a sandbox child, each scored by trusted code.

The one evaluation path: a run's children, fingerprints and validations, `evolve heldout` and
`evolve baselines` all come through :func:`evaluate`. A stage may take several rounds: after each, the
problem (trusted side) may ask for another with a request of its own (optimizer_discovery refines the
learning rate around the best one it measured), and scores the stage from all of them.
"""

from __future__ import annotations

import math
import time
from typing import Any

from evaluators.jobs import EvalJob, EvalResult, JobKind
from evaluators.sandbox import Sandbox, StageRun
from evolve.config import EvaluatorConfig
from evolve.loader import ProblemRef
from evolve.problem import ContractError, Problem, Stage, StageScore
from evolve.program import FailureKind

MAX_ROUNDS = 4


def stages_for(problem: Problem, kind: JobKind) -> tuple[Stage, ...]:
    if kind == JobKind.SEARCH:
        return problem.stages
    stage = {JobKind.FINGERPRINT: problem.fingerprint, JobKind.VALIDATE: problem.validate,
             JobKind.HELDOUT: problem.heldout}[kind]
    return (stage,) if stage is not None else ()


class _StageFailed(Exception):
    def __init__(self, kind: FailureKind | None, reason: str) -> None:
        super().__init__(reason)
        self.kind, self.reason = kind, reason


def evaluate(job: EvalJob, ref: ProblemRef, cfg: EvaluatorConfig, hidden: tuple[str, ...] = ()) -> EvalResult:
    problem = ref.load()
    sandbox = Sandbox(cfg, hidden)
    result = EvalResult(job.program_id, ok=False, kind=job.kind, started_at=time.time())
    stages = stages_for(problem, job.kind)
    if not stages:
        result.failure_kind, result.reason = FailureKind.CONTRACT, f"problem {problem.name} has no {job.kind} stage"
        return result
    t0 = time.monotonic()
    outputs: list[str] = []
    for stage in stages:
        result.stage_reached = stage.name
        try:
            runs = _rounds(problem, sandbox, ref, job.code, stage, outputs)
            if job.kind == JobKind.FINGERPRINT:
                result.fingerprint, result.ok = problem.fingerprint_of(runs[-1].artifacts or {}), True
                break
            score = problem.score_rounds(job.code, stage.name, [r.artifacts or {} for r in runs])
            _check(score)
        except _StageFailed as exc:
            result.failure_kind, result.reason = exc.kind, f"stage {stage.name}: {exc.reason}"
            break
        except ContractError as exc:
            result.failure_kind = FailureKind.parse(getattr(exc, "kind", "contract"))
            result.reason = f"stage {stage.name}: {exc}"
            break
        seconds = sum(r.seconds for r in runs)
        result.metrics[stage.name] = {**score.metrics, "seconds": round(seconds, 4),
                                      "cpu_seconds": round(sum(r.cpu_seconds for r in runs), 4)}
        result.fitness, result.descriptors, result.ok = score.fitness, score.descriptors, True
        if stage.threshold is not None and score.fitness < stage.threshold:
            break
    if result.failure_kind is not None:
        result.ok = False
    result.output = "\n".join(o for o in outputs if o)[-cfg.max_output_chars:] if cfg.max_output_chars else ""
    result.seconds = time.monotonic() - t0
    return result


def _rounds(problem: Problem, sandbox: Sandbox, ref: ProblemRef, code: str, stage: Stage,
            outputs: list[str]) -> list[StageRun]:
    """The rounds of one stage: the first, then as many as the problem asks for (a bounded number)."""
    runs: list[StageRun] = []
    request: dict[str, Any] | None = None
    while True:
        run = sandbox.run(ref.folder, ref.options, code, stage, request)
        outputs.append(run.output)
        if run.artifacts is None:
            raise _StageFailed(run.failure, run.message)
        runs.append(run)
        if len(runs) >= MAX_ROUNDS:
            return runs
        request = problem.follow_up(stage.name, [r.artifacts or {} for r in runs])
        if request is None:
            return runs


def _check(score: StageScore) -> None:
    if not math.isfinite(score.fitness):
        raise _StageFailed(FailureKind.NAN, "non-finite fitness")
