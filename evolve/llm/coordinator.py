"""The LLM side of a run, kept out of the loop: model choice, prompt context, repairs, insights.

The controller calls in at four points (spawn, settle, evaluation done, restore). Everything here
is rebuilt from the archive on resume: the bandit from the LLM children's outcomes, spend from
``llm_calls``, the repair queue from failed LLM children not yet repaired, the latest insight.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from evolve.config import LLMConfig
from evolve.llm.insights import insight_messages, write_insight
from evolve.llm.selector import ModelSelector, improvement
from evolve.mutation.llm_ops import LLMOperator, LLMTools, llm_operator
from evolve.mutation.operators import LLM_OPERATORS, OperatorContext
from evolve.problem import Problem
from evolve.program import FailureKind, Program, Status
from evolve.store import LineageStore
from islands.archipelago import Archipelago

# Failures a model can plausibly fix from the error message alone.
REPAIRABLE = {FailureKind.SYNTAX, FailureKind.STATIC_RULE, FailureKind.CRASH, FailureKind.NAN,
              FailureKind.CONTRACT, FailureKind.IMPORT}


_DONE = ", ".join(f"'{s}'" for s in (Status.REJECTED, Status.EVALUATED, Status.FAILED))


def reward(store: LineageStore, p: Program) -> float:
    """The bandit's reward for an LLM child: relative gain over the nearest ancestor that scored."""
    if p.fitness is None:
        return 0.0
    node = p
    for _ in range(3):  # a repair's parent failed: look further up
        if not node.parent_ids:
            return 0.0
        node = store.get(node.parent_ids[0])
        if node.fitness is not None:
            return improvement(p.fitness, node.fitness)
    return 0.0


def replay_selector(cfg: LLMConfig, store: LineageStore) -> tuple[ModelSelector, list[Program]]:
    """The model selector as the archive's finished LLM children leave it (and those children)."""
    selector = ModelSelector(cfg)
    children = store.programs(f"llm_model IS NOT NULL AND status IN ({_DONE})")
    for p in children:
        selector.record(p.llm_model, reward(store, p), p.llm_cost)  # type: ignore[arg-type]
    return selector, children


class LLMCoordinator:
    def __init__(self, tools: LLMTools, store: LineageStore, problem: Problem) -> None:
        self.tools, self.cfg, self.store, self.problem = tools, tools.cfg, store, problem
        self.selector = ModelSelector(tools.cfg)
        self.repair_op: LLMOperator | None = llm_operator("llm_repair", tools) if tools.cfg.repair else None
        self.repairs: deque[int] = deque()
        self.insight: str | None = None
        self._insight_call: tuple[Future[tuple[str, list]], str, int] | None = None  # type: ignore[type-arg]

    # -- restore -------------------------------------------------------------------------------
    def restore(self) -> None:
        self.tools.client.spent.tokens, self.tools.client.spent.cost = self.store.llm_totals()
        self.selector, children = replay_selector(self.cfg, self.store)
        self.repairs = deque(p.id for p in children if self._needs_repair(p))  # type: ignore[misc]
        repaired = {p.parent_ids[0] for p in self.store.programs("operator = 'llm_repair'")}
        self.repairs = deque(pid for pid in self.repairs if pid not in repaired)
        notes = self.store.insights()
        self.insight = notes[-1]["text"] if notes else None

    # -- spawning ------------------------------------------------------------------------------
    def budget_spent(self) -> str | None:
        return self.tools.client.budget_spent()

    def next_repair(self) -> Program | None:
        return self.store.get(self.repairs.popleft()) if self.repairs else None

    def prepare(self, ctx: OperatorContext, parents: list[Program], island: int, rng: np.random.Generator,
                archipelago: Archipelago) -> None:
        """Fill an LLM operator's context: the model, the lineage, the latest insight, another island's best."""
        ctx.model = self.selector.choose(rng)
        ctx.insight = self.insight
        ancestors, node = [], parents[0]
        while node.parent_ids and len(ancestors) < self.cfg.history_length:
            node = self.store.get(node.parent_ids[0])
            ancestors.append(node)
        ctx.ancestors = ancestors
        # What was already tried on this parent, so the model does not propose it again.
        ctx.tried = self.store.programs("json_extract(parent_ids, '$[0]') = ?", (parents[0].id,),
                                        order="id DESC", limit=5)
        seen = {p.id for p in parents} | {p.id for p in ctx.inspirations}
        for j in range(1, len(archipelago.counters)):
            other = archipelago.counters[(island + j) % len(archipelago.counters)].best_program_id
            if other is not None and other not in seen:
                ctx.inspirations = [*ctx.inspirations, self.store.get(other)]
                break

    # -- outcomes ------------------------------------------------------------------------------
    def on_done(self, child: Program) -> None:
        """A child of an LLM operator was rejected or evaluated: teach the bandit, queue a repair."""
        if child.llm_model is None:
            return
        self.selector.record(child.llm_model, reward(self.store, child), child.llm_cost)
        if self._needs_repair(child):
            self.repairs.append(child.id)  # type: ignore[arg-type]

    def _needs_repair(self, p: Program) -> bool:
        return (self.repair_op is not None and p.operator in LLM_OPERATORS and p.failure_kind in REPAIRABLE
                and bool(p.code.strip()))

    # -- insights ------------------------------------------------------------------------------
    def maybe_start_insight(self, evaluations: int, pool: ThreadPoolExecutor, rng: np.random.Generator) -> None:
        every = self.cfg.insights_interval
        if not every or evaluations % every or self._insight_call is not None or self.budget_spent():
            return
        messages = insight_messages(self.store, self.tools, self.problem)
        model = self.selector.choose(rng)
        self._insight_call = (pool.submit(write_insight, self.tools, model, messages), model, evaluations)

    @property
    def insight_future(self) -> Future | None:  # type: ignore[type-arg]
        return self._insight_call[0] if self._insight_call else None

    def collect_insight(self) -> None:
        if self._insight_call is None or not self._insight_call[0].done():
            return
        fut, model, evaluations = self._insight_call
        self._insight_call = None
        text, calls = fut.result()
        with self.store.transaction() as db:
            self.store.add_llm_calls(db, None, calls)
            if text:
                self.store.add_insight(db, evaluations, model, text)
        if text:
            self.insight = text
