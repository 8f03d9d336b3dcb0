"""Scoring outside a run's loop, through a run's own sandbox, backend and cascade: the held-out tier of a
run's best programs (stored with them, never used for selection) and any program files against a problem
(the seed zoo, or a user's own rule). The CLI parses and prints; what is evaluated and stored is here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evaluators.jobs import EvalJob, EvalResult, JobKind
from evolve.config import ConfigError, EvaluatorConfig
from evolve.loader import ProblemRef, resolve_problem
from evolve.problem import Problem, ProblemError
from evolve.recorder import stage_result
from evolve.runner import check_user_program, evaluate_all, open_run, problem_ref

ROLES = ("search", "validate", "confirm", "heldout")


def heldout(run_dir: Path, n: int, by: str, parallel: int) -> list[dict[str, Any]]:
    """Score the ``n`` best programs of a run (by ``by``) on the problem's held-out tasks and store each
    result with its program. One row per program: id, fitness, validated_fitness, heldout (the stored
    result) and task_scores (the problem's per-task scores of that result)."""
    cfg, store = open_run(run_dir)
    try:
        ref = problem_ref(cfg)
        problem = ref.load()
        if problem.heldout is None:
            raise ProblemError(f"problem {problem.name} declares no held-out stage")
        best = store.top(n, by=by)
        jobs = [EvalJob(p.stored_id, p.code, JobKind.HELDOUT) for p in best]
        results = evaluate_all(ref, cfg.evaluator, jobs, parallel, hidden=(str(run_dir),))
        rows: list[dict[str, Any]] = []
        for p, r in zip(best, results, strict=True):
            result = stage_result(r)
            store.record_stage(p.stored_id, "heldout", result)
            stage = result.get("metrics", {}).get("heldout", {})
            rows.append(
                {
                    "id": p.id,
                    "fitness": p.fitness,
                    "validated_fitness": p.validated_fitness,
                    "heldout": result,
                    "interval": stage.get("interval"),
                    "task_scores": problem.task_scores(stage) if "fitness" in result else {},
                }
            )
        return rows
    finally:
        store.close()


def parse_roles(stages: str) -> list[JobKind]:
    """``search,validate`` -> the job kinds, or one error naming the option."""
    names = [s.strip() for s in stages.split(",") if s.strip()]
    if not names or any(s not in ROLES for s in names):
        raise ConfigError(f"--stages: {stages!r}: each must be one of {', '.join(ROLES)}")
    return [JobKind(s) for s in names]


def programs(
    problem: str,
    roles: list[JobKind],
    files: list[Path] | None,
    options: dict[str, Any],
    parallel: int,
    cfg: EvaluatorConfig,
) -> list[dict[str, Any]]:
    """Score a problem's seed programs (or ``files``) in every role asked for, exactly as a run scores its
    children. One row per program, best first by the first role: seed (its name), one entry per role
    (fitness or failure, interval, compute ratio, metrics), task_scores, and the first role's entry
    flattened into the row (its headline)."""
    folder = resolve_problem(problem, problem if Path(problem).is_dir() else None)
    ref = ProblemRef(str(folder), options)
    prob = ref.load()
    codes = {path.stem: check_user_program(prob, path) for path in files} if files else prob.seed_programs()
    jobs = [EvalJob(i, code, kind) for kind in roles for i, code in enumerate(codes.values())]
    names = list(codes)
    rows: dict[str, dict[str, Any]] = {name: {"seed": name, "task_scores": {}} for name in names}
    for r in evaluate_all(ref, cfg, jobs, parallel):
        row = rows[names[r.program_id]]
        row[str(r.kind)] = _entry(r)
        row["task_scores"].update(_task_scores(prob, r))
    for row in rows.values():
        row.update({k: v for k, v in row[str(roles[0])].items() if k != "metrics"})
    return sorted(rows.values(), key=lambda row: -(row["fitness"] if row["fitness"] is not None else float("-inf")))


def _entry(r: EvalResult) -> dict[str, Any]:
    stage = r.metrics.get(str(r.stage_reached), {}) if r.ok else {}
    return {
        "fitness": r.fitness if r.ok else None,
        "interval": stage.get("interval"),
        "compute_ratio": stage.get("compute_ratio"),
        "failure_kind": r.failure_kind,
        "failure": None if r.ok else r.reason,
        "stage_reached": r.stage_reached,
        "seconds": round(r.seconds, 2),
        "output_chars": len(r.output),
        "metrics": r.metrics,
    }


def _task_scores(problem: Problem, r: EvalResult) -> dict[str, float]:
    out: dict[str, float] = {}
    for metrics in r.metrics.values():
        if isinstance(metrics, dict):
            out.update(problem.task_scores(metrics))
    return out
