"""The steady-state loop: keep the evaluation slots full, in order.

A freed slot goes first to a child already written and waiting, then to a validation (at most
``validation.max_in_flight`` at once), then to a new child. The :class:`~evolve.proposer.Proposer`
writes children (ask) and the :class:`~evolve.recorder.Recorder` settles results (tell); this
module only decides when. LLM children are written in worker threads, up to
``max_pending_proposals`` ahead of the free slots, so model latency overlaps evaluation. No
generation barrier: each finished job frees its slot at once.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evaluators.jobs import Backend, EvalJob, EvalResult, JobKind
from evolve.config import MIN_PROPOSALS, PROPOSALS_PER_EVALUATION, RunConfig
from evolve.errors import RunError
from evolve.hashing import code_hash
from evolve.llm.coordinator import LLMCoordinator
from evolve.llm.operators import LLMTools
from evolve.mutation.base import Proposal
from evolve.mutation.polish import POLISH_OPERATOR, Polisher
from evolve.operators import build_operators
from evolve.problem import Problem
from evolve.program import SEED_OPERATOR, Program, RunState, Status
from evolve.proposer import Draft, Proposer
from evolve.recorder import Recorder
from evolve.store import LineageStore
from islands.archipelago import Archipelago

MAX_CONSECUTIVE_REJECTIONS = 500

__all__ = ["Controller", "Progress", "RunError"]


@dataclass
class Progress:
    evaluations: int = 0
    budget: int = 0
    best_fitness: float | None = None
    best_program_id: int | None = None
    island_best: list[float | None] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    validations: int = 0  # validate-stage results this invocation
    champion_id: int | None = None  # the best validated program
    champion_fitness: float | None = None  # its validated fitness
    started: float = field(default_factory=time.monotonic)
    evaluations_at_start: int = 0
    llm_tokens: int | None = None  # whole-run LLM spend (None: no model configured)
    llm_cost: float | None = None
    stop_reason: str | None = None
    notices: list[str] = field(default_factory=list)  # one line each, in order: what the run had to change

    @property
    def per_minute(self) -> float:
        elapsed = time.monotonic() - self.started
        return 60.0 * (self.evaluations - self.evaluations_at_start) / elapsed if elapsed > 0 else 0.0


class Controller:
    def __init__(
        self,
        cfg: RunConfig,
        store: LineageStore,
        problem: Problem,
        backend: Backend,
        on_progress: Callable[[Progress], None] | None = None,
        llm: LLMTools | None = None,
    ) -> None:
        self.cfg, self.store, self.problem, self.backend = cfg, store, problem, backend
        self.on_progress = on_progress or (lambda p: None)
        self.slots = cfg.controller.max_in_flight
        self.archipelago = Archipelago(cfg.islands, problem.descriptors)
        operators, weights = build_operators(cfg.operators, llm)
        self.llm = LLMCoordinator(llm, store, problem) if llm is not None else None
        self.rng = np.random.default_rng(cfg.seed)
        self.polisher = Polisher(cfg.operators.polish, cfg.seed, lambda pid: store.get(pid).fitness)
        self.proposer = Proposer(
            store,
            problem,
            self.archipelago,
            operators,
            weights,
            self.llm,
            self.rng,
            random_search=cfg.islands.selection.random_search,
            allowed_imports=cfg.problem.allowed_imports,
            polisher=self.polisher,
        )
        self.recorder = Recorder(cfg.islands, store, self.archipelago)
        # LLM children are written in worker threads while evaluations run (see _may_propose).
        self.pool = (
            ThreadPoolExecutor(self.slots + cfg.controller.max_pending_proposals + 1, thread_name_prefix="evolve-llm")
            if self.llm
            else None
        )
        self.drafts: dict[Future[Proposal], Draft] = {}  # children an LLM is writing
        self.ready: deque[Program] = deque()  # accepted children waiting for a slot
        # a child's behaviour is probed before it is trained (its fingerprint unmasks duplicates)
        self.probes_first = cfg.evaluator.fingerprint and problem.fingerprint is not None
        self.validates = problem.validate is not None  # the problem has a validate stage
        self.to_validate: deque[tuple[int, bool]] = deque()  # (program id, only while an island's best?)
        self.validating: set[int] = set()
        self.confirming: set[int] = set()
        self.finals_queued = False
        self.stop_requested = False
        self.progress = Progress(budget=cfg.budget.max_evaluations, island_best=[None] * cfg.islands.num_islands)
        self._rejections_in_a_row = 0
        self._restore()

    # -- state ---------------------------------------------------------------------------------
    def _restore(self) -> None:
        """Rebuild islands, counters, queues and the RNG from the store (a no-op on a fresh archive)."""
        state = self.store.load_rng_state()
        if state is not None:
            self.rng.bit_generator.state = state
        self.archipelago.replay(self.store.events(), self.store.island_rows())
        self.polisher.restore(self.store.get, self.store.by_operator(POLISH_OPERATOR))
        counts = self.store.counts()
        self.progress.failures.update({str(k): v for k, v in counts["failures"].items()})
        self.progress.rejections.update({str(k): v for k, v in counts["rejections"].items()})
        # The budget's reservation: children training or trained, and those in flight not yet known to fail
        # before training (a duplicate or a probe failure gives its share back). What finished is the
        # recorder's count.
        self.submitted = self.store.submitted_children()
        self.proposed = self.store.proposed_children()  # budget.max_proposals
        self.since_best = self.store.evaluations_since_best()  # the plateau so far (budget.stop_after_...)
        self.progress.evaluations = self.progress.evaluations_at_start = self.recorder.evaluations
        if self.llm:
            self.llm.restore()
        best = self.store.best()
        if best:
            self.progress.best_program_id, self.progress.best_fitness = best.id, best.fitness
        self._update_champion()
        self._queue_island_bests(range(len(self.archipelago.islands)))
        if self.store.has_seed():
            self.proposer.allow_imports_of(self.store.get(self.store.seed_id()).code)
        for i, c in enumerate(self.archipelago.counters):
            self.progress.island_best[i] = c.best_fitness

    @property
    def max_proposals(self) -> int:
        budget = self.cfg.budget
        return budget.max_proposals or max(MIN_PROPOSALS, PROPOSALS_PER_EVALUATION * budget.max_evaluations)

    @property
    def stop_reason(self) -> str | None:
        """Why no child is proposed any more (None: the budget or the clock decides)."""
        plateau = self.cfg.budget.stop_after_no_improvement
        if self.proposed >= self.max_proposals:
            return (
                f"max_proposals: {self.proposed} children written, {self.recorder.evaluations} of them trained "
                "(budget.max_proposals)"
            )
        if plateau is not None and self.since_best >= plateau:
            return (
                f"plateau: no new best search fitness in {self.since_best} evaluations "
                "(budget.stop_after_no_improvement)"
            )
        return self.proposer.stop_reason

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> Progress:
        deadline = (time.monotonic() + self.cfg.budget.max_wall_seconds) if self.cfg.budget.max_wall_seconds else None
        self.store.set_state(RunState.RUNNING)
        out_of_time = False
        try:
            for p in self.store.pending():  # killed last time: evaluate again, same id
                if p.status == Status.PROPOSED:
                    self.ready.append(p)
                else:
                    self._run_job(p)
            if not self._seeded() and not self.ready and self.backend.in_flight() == 0:
                self._submit_seed()
            while True:
                out_of_time = deadline is not None and time.monotonic() > deadline
                self._fill_slots(out_of_time)
                self._report()
                if self._idle():
                    if self._queue_final_validations() or self._confirm_champion():
                        continue
                    break
                self._wait_for_work()
        except RunError as exc:
            self.store.set_state(RunState.FAILED, str(exc).splitlines()[0])
            raise
        finally:
            if self.pool:
                self.pool.shutdown(wait=False, cancel_futures=True)
        finished = self.submitted >= self.cfg.budget.max_evaluations or out_of_time or self.stop_reason
        interrupted = self.stop_requested or not finished
        self.store.set_state(RunState.INTERRUPTED if interrupted else RunState.FINISHED, self.stop_reason)
        self._report()
        return self.progress

    def _idle(self) -> bool:
        """Nothing running or being written (whatever could start has been started by now)."""
        return self.backend.in_flight() == 0 and not self.drafts and not (self.llm and self.llm.insight_future)

    def _fill_slots(self, out_of_time: bool) -> None:
        """Waiting children first, then validations, then new children."""
        while not self.stop_requested:
            free = self.backend.in_flight() < self.slots
            if free and self.ready:
                child = self.ready.popleft()
                self.store.submit(child.stored_id)
                self.submitted += 1
                self._run_job(child)
            elif free and self._validation_due():
                self._start_validation()
            elif self._may_propose(out_of_time):
                self._spawn_child()
            else:
                return

    def _wait_for_work(self) -> None:
        """Block until a job finishes or an LLM reply lands (never spin: a busy main thread would starve
        the LLM worker threads of the GIL)."""
        if self.backend.in_flight() == 0:
            pending: list[Future[Any]] = [*self.drafts]
            if self.llm and self.llm.insight_future:
                pending.append(self.llm.insight_future)
            wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
        else:
            for result in self.backend.wait(timeout=0.05 if self.drafts else 0.25):
                self._tell(result)
        for fut in [f for f in self.drafts if f.done()]:
            self._settle(self.drafts.pop(fut), fut.result)
        if self.llm:
            self.llm.collect_insight()

    def _report(self) -> None:
        self.progress.in_flight = self.backend.in_flight() + len(self.drafts)
        if self.llm:
            spent = self.llm.spend()
            self.progress.llm_tokens, self.progress.llm_cost = spent.tokens, spent.cost
            self.progress.notices += self.llm.take_notices()
        self.progress.stop_reason = self.stop_reason
        self.on_progress(self.progress)

    # -- children ------------------------------------------------------------------------------
    def _may_propose(self, out_of_time: bool) -> bool:
        reserved = self.submitted + len(self.ready) + len(self.drafts)
        busy = self.backend.in_flight() + len(self.ready) + len(self.drafts)
        capacity = self.slots + (self.cfg.controller.max_pending_proposals if self.pool else 0)
        return (
            self._seeded()
            and not self.stop_requested
            and not out_of_time
            and self.stop_reason is None
            and reserved < self.cfg.budget.max_evaluations
            and busy < capacity
        )

    def _seeded(self) -> bool:
        return any(len(island) for island in self.archipelago.islands)

    def _submit_seed(self) -> None:
        seeds = self.problem.seed_programs()
        name = self.cfg.problem.seed_program or next(iter(seeds))
        if name not in seeds:
            raise RunError(
                f"problem.seed_program: {name!r} is not a seed of {self.problem.name} (seeds: {', '.join(seeds)})"
            )
        seed = Program(
            code=seeds[name],
            operator=SEED_OPERATOR,
            island=0,
            status=Status.EVALUATING,
            code_hash=code_hash(seeds[name]),
            operator_info={"seed": name},
        )
        self.store.add_seed(seed)
        self.proposer.allow_imports_of(seed.code)
        self._run_job(seed)

    def _spawn_child(self) -> None:
        island = (self.submitted + len(self.ready) + len(self.drafts)) % len(self.archipelago.islands)
        draft = self.proposer.ask(island, self.submitted)
        if draft is None:
            return
        if draft.operator.blocking:
            assert self.pool is not None
            self.drafts[self.pool.submit(draft.write)] = draft
        else:
            self._settle(draft, draft.write)

    def _settle(self, draft: Draft, written: Callable[[], Proposal]) -> None:
        # Straight to evaluation when a slot is free and nothing waits before it.
        now = not self.ready and not self.stop_requested and self.backend.in_flight() < self.slots
        child = self.proposer.settle(draft, written, start_now=now)
        self.proposed += 1
        if child.status == Status.REJECTED:
            self.polisher.tell(child)
            if self.llm:
                self.llm.on_done(child)  # a rejected LLM child teaches the model selector too
            self.progress.rejections[str(child.rejection)] += 1
            self._rejections_in_a_row += 1
            if self._rejections_in_a_row >= MAX_CONSECUTIVE_REJECTIONS:
                self.stop_requested = True
                raise RunError(
                    f"{MAX_CONSECUTIVE_REJECTIONS} children in a row were rejected "
                    f"(last: {child.reason}); the operators cannot make progress on this program"
                )
            return
        self._rejections_in_a_row = 0
        if now:
            self.submitted += 1
            self._run_job(child)
        else:
            self.ready.append(child)

    def _run_job(self, program: Program) -> None:
        """Start a program's evaluation: its behaviour fingerprint first where the problem has one."""
        kind = JobKind.FINGERPRINT if self.probes_first and program.fingerprint is None else JobKind.SEARCH
        self.backend.submit(EvalJob(program.stored_id, program.code, kind))

    def _tell(self, result: EvalResult) -> None:
        told = self.recorder.tell(result)
        if result.kind == JobKind.VALIDATE:
            self.validating.discard(result.program_id)
            self.progress.validations += 1
            self._update_champion()
            return
        if result.kind == JobKind.CONFIRM:
            return
        if told.next_job is not None:
            self.backend.submit(told.next_job)
        heard = told.evaluated or told.before_training or told.duplicate_of is not None
        if told.program is not None and heard:
            self.polisher.tell(told.program)
            if self.llm:
                self.llm.on_done(told.program)  # the one place the LLM side hears how a child turned out
        if told.duplicate_of is not None:
            self.submitted -= 1
            self.progress.rejections[str(told.program.rejection if told.program else "duplicate")] += 1
        if told.before_training and told.program is not None:
            self.submitted -= 1  # stored and shown, but it never trained: no budget spent
            self.progress.failures[str(told.program.failure_kind)] += 1
        improved = (
            told.program is not None
            and told.program.fitness is not None
            and (self.progress.best_fitness is None or told.program.fitness > self.progress.best_fitness)
        )
        if improved and told.program is not None:
            self.progress.best_fitness, self.progress.best_program_id = told.program.fitness, told.program.id
        if told.evaluated:
            self.since_best = 0 if improved else self.since_best + 1
            self.progress.evaluations = self.recorder.evaluations
            if told.program is not None and told.program.status == Status.FAILED:
                self.progress.failures[str(told.program.failure_kind)] += 1
            if self.llm:
                assert self.pool is not None
                self.llm.maybe_start_insight(self.progress.evaluations, self.pool, self.rng)
        for i, c in enumerate(self.archipelago.counters):
            self.progress.island_best[i] = c.best_fitness
        self._queue_island_bests(told.improved_islands)

    # -- validation (the funnel between search fitness and the champion) -------------------------
    def _queue_island_bests(self, islands: range | list[int]) -> None:
        if not (self.validates and self.cfg.validation.island_bests):
            return
        ids = {pid for i in islands if (pid := self.archipelago.counters[i].best_program_id) is not None}
        queued = {pid for pid, _ in self.to_validate} | self.validating
        for pid in self.store.needs_validation(ids - queued):
            self.to_validate.append((pid, True))

    def _queue_final_validations(self) -> bool:
        """At the end of a run (not an interrupted one): the top few by search fitness."""
        if not self.validates or self.finals_queued or self.stop_requested or not self.cfg.validation.top_k:
            return False
        self.finals_queued = True
        for pid in self.store.top_unvalidated(self.cfg.validation.top_k):
            if pid not in self.validating:
                self.to_validate.append((pid, False))
        return bool(self.to_validate)

    def _confirm_champion(self) -> bool:
        """At the very end: the champion (the best of several validated programs, so its validated number is
        biased upward) re-scored on fresh seeds; that is the number the run reports for it."""
        if self.problem.confirm is None or not self.cfg.validation.confirm or self.stop_requested:
            return False
        champion = self.store.champion()
        if champion is None or champion.validated_fitness is None or "confirm" in champion.metrics:
            return False
        if champion.id in self.confirming:
            return False
        self.confirming.add(champion.stored_id)
        self.backend.submit(EvalJob(champion.stored_id, champion.code, JobKind.CONFIRM))
        return True

    def _validation_due(self) -> bool:
        # An island's best that has since been displaced is no longer worth validating.
        bests = {c.best_program_id for c in self.archipelago.counters}
        while self.to_validate and self.to_validate[0][1] and self.to_validate[0][0] not in bests:
            self.to_validate.popleft()
        return (
            bool(self.to_validate)
            and len(self.validating) < self.cfg.validation.max_in_flight
            and not self.stop_requested
        )

    def _start_validation(self) -> None:
        pid, _ = self.to_validate.popleft()
        self.validating.add(pid)
        self.backend.submit(EvalJob(pid, self.store.get(pid).code, JobKind.VALIDATE))

    def _update_champion(self) -> None:
        champion = self.store.champion()
        if champion is not None and champion.validated_fitness is not None:
            self.progress.champion_id, self.progress.champion_fitness = champion.id, champion.validated_fitness
