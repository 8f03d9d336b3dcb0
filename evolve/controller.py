"""The steady-state evolution loop.

Keeps ``max_in_flight`` evaluations running: each finished evaluation frees a slot that is
refilled at once (select parents -> operator -> validate/dedup -> submit). LLM operators write
their children in worker threads, up to ``max_pending_proposals`` ahead of the free slots, so
model latency overlaps evaluation; a written child waits in ``ready`` (stored as ``proposed``)
for a slot. Every state change is one store transaction, so the run can be killed at any moment
and resumed from its archive.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evaluators.backend import Backend
from evaluators.cascade import EvalResult
from evaluators.static_rules import StaticRuleViolation, check_program
from evolve.config import RunConfig
from evolve.mutation.blocks import BlockError, code_hash, split_blocks
from evolve.llm.coordinator import LLMCoordinator
from evolve.mutation.llm_ops import LLMTools
from evolve.mutation.operators import Operator, OperatorContext, OperatorFailed, Proposal, build_operators
from evolve.problem import Problem
from evolve.program import FailureKind, Program, Status
from evolve.store import LineageStore
from islands.archipelago import Archipelago, IslandEvent, ProgramSummary

MAX_CONSECUTIVE_REJECTIONS = 500


class RunError(RuntimeError):
    """The run cannot go on (e.g. the seed program fails); the message says why."""


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
    started: float = field(default_factory=time.monotonic)
    evaluations_at_start: int = 0
    llm_tokens: int | None = None  # whole-run LLM spend (None: no model configured)
    llm_cost: float | None = None
    stop_reason: str | None = None

    @property
    def per_minute(self) -> float:
        elapsed = time.monotonic() - self.started
        return 60.0 * (self.evaluations - self.evaluations_at_start) / elapsed if elapsed > 0 else 0.0


class Controller:
    def __init__(self, cfg: RunConfig, store: LineageStore, problem: Problem, backend: Backend,
                 on_progress: Callable[[Progress], None] | None = None, llm: LLMTools | None = None) -> None:
        self.cfg, self.store, self.problem, self.backend = cfg, store, problem, backend
        self.on_progress = on_progress or (lambda p: None)
        self.archipelago = Archipelago(cfg.islands, problem.descriptors)
        self.operators, self.op_weights = build_operators(cfg.operators, llm)
        self.llm = LLMCoordinator(llm, store, problem) if llm is not None else None
        # LLM children are written in worker threads while evaluations run (see _capacity).
        self.pool = ThreadPoolExecutor(cfg.controller.max_in_flight + cfg.controller.max_pending_proposals + 1,
                                       thread_name_prefix="evolve-llm") if self.llm else None
        self.drafts: dict[Future[Proposal], Program] = {}  # children an LLM is writing
        self.ready: deque[Program] = deque()  # accepted children waiting for an evaluation slot
        self.rng = np.random.default_rng(cfg.seed)
        self.stop_requested = False
        self.stop_reason: str | None = None  # a budget other than evaluations/time ended the run
        self.progress = Progress(budget=cfg.budget.max_evaluations, island_best=[None] * cfg.islands.num_islands)
        self._rejections_in_a_row = 0
        self._restore()

    # -- state ---------------------------------------------------------------------------------
    def _restore(self) -> None:
        """Rebuild islands, counters and the RNG from the store (a no-op on a fresh archive)."""
        state = self.store.load_rng_state()
        if state is not None:
            self.rng.bit_generator.state = state
        self.archipelago.replay(self.store.events(), self.store.island_rows())
        counts = self.store.counts()
        self.progress.failures.update({k or "?": v for k, v in counts["failures"].items()})
        self.progress.rejections.update(counts["rejections"])
        self.submitted = self.store.submitted_children()
        self.progress.evaluations = self.progress.evaluations_at_start = self.store.completed_evaluations()
        if self.llm:
            self.llm.restore()
        self._refresh_best()

    def _refresh_best(self) -> None:
        for i, c in enumerate(self.archipelago.counters):
            self.progress.island_best[i] = c.best_fitness
        top = self.store.top(1)
        if top:
            self.progress.best_fitness, self.progress.best_program_id = top[0].fitness, top[0].id

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> Progress:
        deadline = (time.monotonic() + self.cfg.budget.max_wall_seconds) if self.cfg.budget.max_wall_seconds else None
        self.store.set_run_state("running")
        for p in self.store.pending():  # killed last time: evaluate again, same id
            if p.status == Status.PROPOSED:
                self.ready.append(p)
            else:
                self.backend.submit(p.id, p.code)  # type: ignore[arg-type]
        if not self._seeded() and not self.store.pending():
            self._submit_seed()
        try:
            while True:
                out_of_time = deadline is not None and time.monotonic() > deadline
                self._submit_ready()
                while self._may_propose(out_of_time):
                    self._spawn_child()
                    self._submit_ready()
                self._report()
                if self.backend.in_flight() == 0 and not self.drafts and not (self.llm and self.llm.insight_future):
                    break
                self._wait_for_work()
        finally:
            if self.pool:
                self.pool.shutdown(wait=False, cancel_futures=True)
        finished = self.submitted >= self.cfg.budget.max_evaluations or out_of_time or self.stop_reason
        self.store.set_run_state("finished" if finished and not self.stop_requested else "interrupted")
        self._report()
        return self.progress

    def _wait_for_work(self) -> None:
        """Block until an evaluation finishes or an LLM reply lands (never spin: a busy main thread
        would starve the LLM worker threads of the GIL)."""
        if self.backend.in_flight() == 0:
            pending = list(self.drafts) + ([self.llm.insight_future] if self.llm and self.llm.insight_future else [])
            wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
        else:
            for result in self.backend.wait(timeout=0.05 if self.drafts else 0.25):
                self._complete(result)
        self._collect_drafts()

    def _report(self) -> None:
        self.progress.in_flight = self.backend.in_flight() + len(self.drafts)
        if self.llm:
            spent = self.llm.tools.client.spent
            self.progress.llm_tokens, self.progress.llm_cost = spent.tokens, spent.cost
        self.progress.stop_reason = self.stop_reason
        self.on_progress(self.progress)

    def _may_propose(self, out_of_time: bool) -> bool:
        reserved = self.submitted + len(self.ready) + len(self.drafts)
        busy = self.backend.in_flight() + len(self.ready) + len(self.drafts)
        capacity = self.cfg.controller.max_in_flight + (self.cfg.controller.max_pending_proposals if self.pool else 0)
        return (self._seeded() and not self.stop_requested and not out_of_time and self.stop_reason is None
                and reserved < self.cfg.budget.max_evaluations and busy < capacity)

    def _seeded(self) -> bool:
        return any(len(island) for island in self.archipelago.islands)

    def _submit_seed(self) -> None:
        seeds = self.problem.seed_programs()
        name = self.cfg.problem.seed_program or next(iter(seeds))
        if name not in seeds:
            raise RunError(f"problem.seed_program: {name!r} is not a seed of {self.problem.name} "
                           f"(seeds: {', '.join(seeds)})")
        seed = Program(code=seeds[name], operator="seed", island=0, status=Status.EVALUATING,
                       code_hash=code_hash(seeds[name]), operator_info={"seed": name})
        with self.store.transaction() as db:
            self.store.insert_program(db, seed)
        self.backend.submit(seed.id, seed.code)  # type: ignore[arg-type]

    def _spawn_child(self) -> None:
        llm_spent = self.llm.budget_spent() if self.llm else None
        if self.llm and self.llm.repair_op and self.llm.repairs and not llm_spent:
            failed = self.llm.next_repair()
            if failed is not None:
                return self._spawn(self.llm.repair_op, [failed], [], failed.island)
        island = (self.submitted + len(self.ready) + len(self.drafts)) % len(self.archipelago.islands)
        parent_ids = [self.archipelago.select(island, self.rng).program_id]
        mates = self.archipelago.inspirations(island, self.rng, set(parent_ids))
        if self.cfg.islands.selection.random_search:
            parent_ids, mates = [self.store.seed_id()], []
        # Crossover needs mates: early on (one elite) only single-parent operators are eligible.
        names = [n for n in self.operators if self.operators[n].num_parents <= 1 + len(mates)
                 and not (llm_spent and self.operators[n].blocking)]
        if not names:
            self.stop_reason = llm_spent or "no operator can make a child"
            return None
        weights = np.array([self.op_weights[n] for n in names])
        op: Operator = self.operators[names[int(self.rng.choice(len(names), p=weights / weights.sum()))]]
        parent_ids += [m.program_id for m in mates[: op.num_parents - 1]]
        parents = [self.store.get(pid) for pid in parent_ids]
        # The elites not used as parents are the operator's inspirations: one draw serves both.
        inspirations = [self.store.get(m.program_id) for m in mates if m.program_id not in parent_ids]
        return self._spawn(op, parents, inspirations, island)

    def _spawn(self, op: Operator, parents: list[Program], inspirations: list[Program], island: int) -> None:
        ctx = OperatorContext(self.problem, np.random.default_rng(int(self.rng.integers(2**63))), inspirations)
        child = Program(code="", parent_ids=[p.id for p in parents], operator=op.name, island=island,  # type: ignore[misc]
                        generation=1 + max(p.generation for p in parents))
        if op.blocking:
            assert self.llm is not None and self.pool is not None
            self.llm.prepare(ctx, parents, island, self.rng, self.archipelago)
            self.drafts[self.pool.submit(op.propose, parents, ctx)] = child
        else:
            self._settle(child, lambda: op.propose(parents, ctx))

    def _collect_drafts(self) -> None:
        for fut in [f for f in self.drafts if f.done()]:
            self._settle(self.drafts.pop(fut), fut.result)
        if self.llm:
            self.llm.collect_insight()

    def _settle(self, child: Program, propose: Callable[[], Proposal]) -> None:
        """Validate and dedup a proposed child; accept it for evaluation or record the rejection."""
        calls: list[Any] = []
        try:
            proposal = propose()
            child.code, child.operator_info, calls = proposal.code, proposal.info, proposal.calls
            self._set_llm_fields(child, proposal.llm)
            self._validate(child)
        except OperatorFailed as exc:
            child.operator_info, calls = exc.info, exc.calls
            self._set_llm_fields(child, exc.llm)
            return self._reject(child, str(exc), None, calls)
        except (SyntaxError, BlockError) as exc:
            return self._reject(child, f"syntax: {exc}", FailureKind.SYNTAX, calls)
        except StaticRuleViolation as exc:
            return self._reject(child, f"static rule {exc}", FailureKind.STATIC_RULE, calls)
        except Exception as exc:  # noqa: BLE001 (a reply that trips an operator bug must not end the run)
            return self._reject(child, f"{child.operator}: operator error {type(exc).__name__}: {exc}", None, calls)
        original = self.store.find_by_hash(child.code_hash)
        if original is not None:
            child.duplicate_of = original.id
            return self._reject(child, f"duplicate of program {original.id}", None, calls)
        # Straight to evaluation when a slot is free and nothing waits before it.
        now = not self.ready and not self.stop_requested \
            and self.backend.in_flight() < self.cfg.controller.max_in_flight
        child.status = Status.EVALUATING if now else Status.PROPOSED
        with self.store.transaction() as db:
            self.store.insert_program(db, child)
            self.store.add_llm_calls(db, child.id, calls)
            self.store.save_rng_state(db, self.rng.bit_generator.state)
        self._rejections_in_a_row = 0
        if now:
            self.submitted += 1
            self.backend.submit(child.id, child.code)  # type: ignore[arg-type]
        else:
            self.ready.append(child)

    def _submit_ready(self) -> None:
        while self.ready and not self.stop_requested and self.backend.in_flight() < self.cfg.controller.max_in_flight:
            child = self.ready.popleft()
            child.status = Status.EVALUATING
            with self.store.transaction() as db:
                self.store.update_program(db, child)
            self.submitted += 1
            self.backend.submit(child.id, child.code)  # type: ignore[arg-type]

    @staticmethod
    def _set_llm_fields(child: Program, llm: dict[str, Any]) -> None:
        for key, value in llm.items():
            setattr(child, f"llm_{key}", value)

    def _validate(self, child: Program) -> None:
        split_blocks(child.code)
        check_program(child.code, self.problem.allowed_imports)
        child.code_hash = code_hash(child.code)

    def _reject(self, child: Program, reason: str, kind: FailureKind | None, calls: list[Any]) -> None:
        child.status, child.reason, child.failure_kind = Status.REJECTED, reason, kind
        child.code_hash = child.code_hash or code_hash(child.code)
        with self.store.transaction() as db:
            self.store.insert_program(db, child)
            self.store.add_llm_calls(db, child.id, calls)
            self.store.save_rng_state(db, self.rng.bit_generator.state)
        if self.llm:
            self.llm.on_done(child)
        self.progress.rejections["duplicate" if child.duplicate_of else (kind or "other")] += 1
        self._rejections_in_a_row += 1
        if self._rejections_in_a_row >= MAX_CONSECUTIVE_REJECTIONS:
            self.stop_requested = True
            raise RunError(f"{MAX_CONSECUTIVE_REJECTIONS} children in a row were rejected "
                           f"(last: {reason}); the operators cannot make progress on this program")

    def _complete(self, result: EvalResult) -> None:
        program = self.store.get(result.program_id)
        if program.status not in (Status.EVALUATING, Status.PROPOSED):
            return  # already recorded (a duplicate delivery after a retry)
        program.status = Status.EVALUATED if result.ok else Status.FAILED
        program.failure_kind, program.reason = result.failure_kind, result.reason
        program.fitness = result.fitness if result.ok else None
        program.metrics, program.descriptors = result.metrics, result.descriptors
        if result.cached:
            program.metrics = {**program.metrics, "cached": True}
        program.stage_reached, program.output = result.stage_reached, result.output
        program.eval_seconds = result.seconds
        program.eval_started_at, program.eval_finished_at = result.started_at, time.time()
        summary = ProgramSummary(program.id, program.fitness, program.descriptors) \
            if program.fitness is not None else None  # type: ignore[arg-type]
        events: list[IslandEvent] = []
        if program.operator == "seed":
            if summary is None:
                with self.store.transaction() as db:
                    self.store.update_program(db, program)
                raise RunError(f"the seed program (id {program.id}) failed: {program.reason}\n{program.output}")
            events = self.archipelago.seed(summary)
        else:
            events = self.archipelago.record_result(program.island, summary)
            self.progress.evaluations += 1
            if not result.ok:
                self.progress.failures[str(result.failure_kind)] += 1
            # The store still holds this program unevaluated until the transaction below.
            def lookup(pid: int) -> ProgramSummary:
                return summary if summary is not None and pid == summary.id else self._summary(pid)

            if self.progress.evaluations % self.cfg.islands.migration_interval == 0:
                events += self.archipelago.migrate(lookup)
            for island in self.archipelago.stagnant():
                events += self.archipelago.reset(island, lookup)
        with self.store.transaction() as db:
            self.store.update_program(db, program)
            for ev in events:
                self.store.add_event(db, ev.kind, ev.island, ev.program_id, ev.data)
            for i, c in enumerate(self.archipelago.counters):
                self.store.save_island(db, i, c.evaluations, c.since_improvement, c.best_fitness, c.best_program_id)
        self._refresh_best()
        if self.llm and program.operator != "seed":
            self.llm.on_done(program)
            assert self.pool is not None
            self.llm.maybe_start_insight(self.progress.evaluations, self.pool, self.rng)

    def _summary(self, program_id: int) -> ProgramSummary:
        p = self.store.get(program_id)
        assert p.fitness is not None
        return ProgramSummary(p.id, p.fitness, p.descriptors)  # type: ignore[arg-type]

