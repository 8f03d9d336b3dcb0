"""tell: settle one finished job. A search result lands in the store and on its island (migration
and stagnation resets follow from the evaluation count); a fingerprint either unmasks a behaviour
duplicate or lets the child go on to training; a validation or held-out result is attached to its
program. Each outcome is one store operation, so a kill between two results loses nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from evaluators.jobs import EvalJob, EvalResult, JobKind
from evolve.config import IslandsConfig
from evolve.errors import RunError
from evolve.program import Program, Status
from evolve.store import LineageStore
from islands.archipelago import Archipelago, IslandEvent, ProgramSummary


@dataclass
class Told:
    """What one result changed, for the controller's scheduling and progress display."""

    program: Program | None = None
    evaluated: bool = False  # a child's training finished (it counts toward the budget's evaluations)
    duplicate_of: int | None = None  # the child behaves like this program: it was rejected, never trained
    before_training: bool = False  # the child failed its behaviour probe: stored as failed, never trained
    next_job: EvalJob | None = None  # what this program runs next (its training, after its fingerprint)
    improved_islands: list[int] = field(default_factory=list)


def stage_result(result: EvalResult) -> dict[str, Any]:
    """A validate/held-out outcome as stored in the program's metrics."""
    if result.ok and result.fitness is not None:
        return {"fitness": result.fitness, "metrics": result.metrics, "seconds": round(result.seconds, 3)}
    return {"failure_kind": str(result.failure_kind), "reason": result.reason, "seconds": round(result.seconds, 3)}


def _fill(program: Program, result: EvalResult) -> None:
    """A finished search or probe result on its program (not yet stored)."""
    program.status = Status.EVALUATED if result.ok else Status.FAILED
    program.failure_kind, program.reason = result.failure_kind, result.reason
    program.fitness = result.fitness if result.ok else None
    program.metrics, program.descriptors = result.metrics, result.descriptors
    if result.cached:
        program.metrics = {**program.metrics, "cached": True}
    program.stage_reached, program.output = result.stage_reached, result.output
    program.eval_seconds = result.seconds
    program.eval_started_at, program.eval_finished_at = result.started_at, time.time()


class Recorder:
    def __init__(self, cfg: IslandsConfig, store: LineageStore, archipelago: Archipelago) -> None:
        self.cfg, self.store, self.archipelago = cfg, store, archipelago
        # The run's clock and the budget's count: children whose training finished (its one owner; rebuilt
        # from the archive on resume). Migration and the event stamps follow it.
        self.evaluations = store.completed_evaluations()

    def tell(self, result: EvalResult) -> Told:
        program = self.store.get(result.program_id)
        if result.kind in (JobKind.VALIDATE, JobKind.CONFIRM, JobKind.HELDOUT):
            self.store.record_stage(result.program_id, str(result.kind), stage_result(result))
            return Told(self.store.get(result.program_id))
        if program.status not in (Status.EVALUATING, Status.PROPOSED):
            return Told()  # already recorded (a duplicate delivery after a retry)
        if result.kind == JobKind.FINGERPRINT and result.ok and result.fingerprint is not None:
            return self._fingerprinted(program, result.fingerprint)
        if result.kind == JobKind.FINGERPRINT and not program.is_seed:
            return self._failed_before_training(program, result)
        return self._evaluated(program, result)

    def _failed_before_training(self, program: Program, result: EvalResult) -> Told:
        """A child that failed its behaviour probe: stored as failed with its reason, but, like a rejected
        child, it never trained: no budget, no island, no clock tick."""
        _fill(program, result)
        self.store.complete(program, [], self.archipelago.rows())
        return Told(program, before_training=True)

    def _fingerprinted(self, program: Program, fingerprint: str) -> Told:
        original = None if program.is_seed else self.store.find_by_fingerprint(fingerprint, program.stored_id)
        if original is None:
            self.store.set_fingerprint(program.stored_id, fingerprint)
            return Told(program, next_job=EvalJob(program.stored_id, program.code, JobKind.SEARCH))
        self.store.reject_duplicate_behaviour(program.stored_id, original, fingerprint)
        return Told(self.store.get(program.stored_id), duplicate_of=original)

    def _evaluated(self, program: Program, result: EvalResult) -> Told:
        _fill(program, result)
        summary = (
            ProgramSummary(program.stored_id, program.fitness, program.descriptors)
            if program.fitness is not None
            else None
        )
        bests = [c.best_program_id for c in self.archipelago.counters]
        if program.is_seed:
            if summary is None:
                self.store.complete(program, [], [])
                raise RunError(
                    f"the seed program (id {program.id}) failed ({program.failure_kind}): {program.reason} "
                    f"(its output: `evolve show RUN_DIR {program.id}`)"
                )
            events = self.archipelago.seed(summary)
        else:
            events = self._place(program, summary)
        for ev in events:  # when it happened, in the run's own clock (the MAP-Elites replay's axis)
            ev.data["evaluations"] = self.evaluations
        self.store.complete(program, events, self.archipelago.rows())
        improved = [i for i, c in enumerate(self.archipelago.counters) if c.best_program_id != bests[i]]
        return Told(program, evaluated=not program.is_seed, improved_islands=improved)

    def _place(self, program: Program, summary: ProgramSummary | None) -> list[IslandEvent]:
        events = self.archipelago.record_result(program.island, summary)
        self.evaluations += 1

        def lookup(pid: int) -> ProgramSummary:
            # The store still holds this program unevaluated until the caller's transaction.
            if summary is not None and pid == summary.id:
                return summary
            p = self.store.get(pid)
            assert p.fitness is not None
            return ProgramSummary(pid, p.fitness, p.descriptors)

        if self.evaluations % self.cfg.migration_interval == 0:
            events += self.archipelago.migrate(lookup)
        for island in self.archipelago.stagnant():
            events += self.archipelago.reset(island, lookup)
        return events
