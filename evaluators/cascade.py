"""Running one job: the stages of its role, each in a sandbox child, each scored by trusted code.

The one evaluation path: a run's children, fingerprints and validations, `evolve heldout` and
`evolve baselines` all come through :func:`evaluate`. A stage may take several rounds: after each, the
problem (trusted side) may ask for another with a request of its own (optimizer_discovery refines the
learning rate around the best one it measured), and scores the stage from all of them.
"""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any

from evaluators.jobs import EvalJob, EvalResult, JobKind
from evaluators.sandbox import Sandbox, StageRun
from evolve.config import EvaluatorConfig
from evolve.loader import ProblemRef
from evolve.problem import ContractError, Problem, Stage, StageScore
from evolve.program import PROBE_STAGE, FailureKind

MAX_ROUNDS = 4


def stages_for(problem: Problem, kind: JobKind) -> tuple[Stage, ...]:
    if kind == JobKind.SEARCH:
        return problem.stages
    stage = {
        JobKind.FINGERPRINT: problem.fingerprint,
        JobKind.VALIDATE: problem.validate,
        JobKind.CONFIRM: problem.confirm,
        JobKind.HELDOUT: problem.heldout,
    }[kind]
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
        result.stage_reached = PROBE_STAGE if job.kind == JobKind.FINGERPRINT else stage.name
        try:
            runs = _rounds(problem, sandbox, ref, job.code, stage, outputs)
            if job.kind == JobKind.FINGERPRINT:
                result.fingerprint, result.ok = problem.fingerprint_of(runs[-1].artifacts or {}), True
                break
            score = problem.score_rounds(job.code, stage.name, [r.artifacts or {} for r in runs])
            ratio = _compute_ratio(problem, sandbox, ref, stage, runs)
            score = problem.apply_cost(score, ratio)
            _check(score)
        except _StageFailed as exc:
            result.failure_kind, result.reason = exc.kind, f"stage {stage.name}: {exc.reason}"
            break
        except ContractError as exc:
            result.failure_kind = FailureKind.parse(getattr(exc, "kind", "contract"))
            result.reason = f"stage {stage.name}: {exc}"
            break
        seconds = sum(r.seconds for r in runs)
        result.metrics[stage.name] = {
            **score.metrics,
            "seconds": round(seconds, 4),
            "cpu_seconds": round(sum(r.cpu_seconds for r in runs), 4),
            "compute_ratio": None if ratio is None else round(ratio, 4),
        }
        result.fitness, result.descriptors, result.ok = score.fitness, score.descriptors, True
        if stage.threshold is not None and score.fitness < stage.threshold:
            break
    if result.failure_kind is not None:
        result.ok = False
    result.output = "\n".join(o for o in outputs if o)[-cfg.max_output_chars :] if cfg.max_output_chars else ""
    result.seconds = time.monotonic() - t0
    return result


def _rounds(
    problem: Problem, sandbox: Sandbox, ref: ProblemRef, code: str, stage: Stage, outputs: list[str]
) -> list[StageRun]:
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


_REFERENCE: dict[tuple[str, str, str], float | None] = {}  # (problem, options, stage) -> the reference's cost
_REFERENCE_LOCK = threading.Lock()


def _cost(runs: list[StageRun]) -> float:
    """What a stage cost, measured outside the candidate: the kernel's count of the jail's CPU time (its wall
    time where no CPU cgroup is writable)."""
    cpu = sum(r.cpu_seconds for r in runs)
    return cpu if cpu > 0 else sum(r.seconds for r in runs)


def _compute_ratio(
    problem: Problem, sandbox: Sandbox, ref: ProblemRef, stage: Stage, runs: list[StageRun]
) -> float | None:
    """The candidate's cost of this stage over the problem's reference program's (e.g. AdamW), the reference
    measured once per evaluator process through the same sandbox, on the same machine."""
    code = problem.reference_program()
    if code is None:
        return None
    key = (ref.folder, json.dumps(ref.options, sort_keys=True), stage.name)
    with _REFERENCE_LOCK:
        if key not in _REFERENCE:
            try:
                _REFERENCE[key] = _cost(_rounds(problem, sandbox, ref, code, stage, []))
            except _StageFailed:
                _REFERENCE[key] = None
    reference = _REFERENCE[key]
    return _cost(runs) / reference if reference else None


def _check(score: StageScore) -> None:
    if not math.isfinite(score.fitness):
        raise _StageFailed(FailureKind.NAN, "non-finite fitness")
