"""The LLM side of a run, kept out of the loop: model choice, prompt context, repairs, insights.

The proposer calls :meth:`LLMCoordinator.prepare` for each LLM child (and asks for the next repair);
the controller, the one place that sees every outcome, calls :meth:`on_done` when a child is rejected
or evaluated, and starts and collects insight notes. Everything here is rebuilt from the archive on
resume: the bandit from the LLM children's outcomes, spend from ``llm_calls``, the repair queue from
failed LLM children not yet repaired, the latest insight.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from evolve.llm.client import CallRecord, Spend
from evolve.llm.insights import insight_messages, write_insight
from evolve.llm.operators import LLM_OPERATORS, REPAIR, LLMOperator, LLMTools, llm_operator
from evolve.llm.selector import ModelSelector, replayed, reward
from evolve.mutation.base import OperatorContext
from evolve.problem import Problem
from evolve.program import FailureKind, LLMOutcome, Program
from evolve.store import LineageStore

# Failures a model can plausibly fix from the error message alone.
REPAIRABLE = {
    FailureKind.SYNTAX,
    FailureKind.STATIC_RULE,
    FailureKind.CRASH,
    FailureKind.NAN,
    FailureKind.CONTRACT,
    FailureKind.IMPORT,
}


def needs_repair(outcome: LLMOutcome) -> bool:
    return outcome.operator in LLM_OPERATORS and outcome.failure_kind in REPAIRABLE and outcome.code_chars > 0


class LLMCoordinator:
    def __init__(self, tools: LLMTools, store: LineageStore, problem: Problem) -> None:
        self.tools, self.cfg, self.store, self.problem = tools, tools.cfg, store, problem
        self.selector = ModelSelector(tools.cfg)
        self.repair_op: LLMOperator | None = llm_operator(REPAIR, tools) if tools.cfg.repair else None
        self.repairs: deque[int] = deque()
        self.insight: str | None = None
        self._insight_call: tuple[Future[tuple[str, list[CallRecord]]], str, int] | None = None

    def restore(self) -> None:
        self.tools.client.restore_spend(Spend(*self.store.llm_totals()))
        outcomes = self.store.llm_outcomes()
        self.selector = replayed(self.cfg, outcomes)
        repaired = self.store.repaired_parents()
        self.repairs = deque(
            o.id for o in outcomes if self.repair_op is not None and needs_repair(o) and o.id not in repaired
        )
        self.insight = self.store.latest_insight()

    # -- proposing -------------------------------------------------------------------------------
    def spend(self) -> Spend:
        return self.tools.client.spend()

    def budget_spent(self) -> str | None:
        """Why no new LLM call may start (a budget spent, every model unreachable), or None."""
        return self.tools.client.budget_spent()

    def take_notices(self) -> list[str]:
        return self.tools.client.take_notices()

    def next_repair(self) -> Program | None:
        return self.store.get(self.repairs.popleft()) if self.repairs else None

    def prepare(self, ctx: OperatorContext, parents: list[Program], rng: np.random.Generator) -> None:
        """Fill an LLM operator's context: the model, the lineage, what was tried, the latest insight."""
        ctx.model = self.selector.choose(rng, self.tools.client.usable_models())
        ctx.insight = self.insight
        chain = self.store.lineage(parents[0].stored_id)[1 : 1 + self.cfg.history_length]
        ctx.ancestors = self.store.get_many(row["id"] for row in chain)[::-1]  # parent's parent first
        # What was already tried on this parent, so the model does not propose it again.
        ctx.tried = self.store.children(parents[0].stored_id, limit=5)

    # -- outcomes --------------------------------------------------------------------------------
    def on_done(self, child: Program) -> None:
        """A child of an LLM operator was rejected or evaluated: teach the bandit, queue a repair."""
        if child.llm is None or child.id is None:
            return
        outcome = self.store.llm_outcomes(child.id)
        if not outcome:
            return
        self.selector.record(child.llm.model, reward(outcome[0]), child.llm.cost)
        if self.repair_op is not None and needs_repair(outcome[0]):
            self.repairs.append(child.id)

    # -- insights --------------------------------------------------------------------------------
    def maybe_start_insight(self, evaluations: int, pool: ThreadPoolExecutor, rng: np.random.Generator) -> None:
        every = self.cfg.insights_interval
        if not every or evaluations % every or self._insight_call is not None or self.budget_spent():
            return
        messages = insight_messages(self.store, self.tools, self.problem)
        model = self.selector.choose(rng, self.tools.client.usable_models())
        self._insight_call = (pool.submit(write_insight, self.tools, model, messages), model, evaluations)

    @property
    def insight_future(self) -> Future[tuple[str, list[CallRecord]]] | None:
        return self._insight_call[0] if self._insight_call else None

    def collect_insight(self) -> None:
        if self._insight_call is None or not self._insight_call[0].done():
            return
        fut, model, evaluations = self._insight_call
        self._insight_call = None
        text, calls = fut.result()
        self.store.add_insight(calls, evaluations, model, text)
        if text:
            self.insight = text
