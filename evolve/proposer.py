"""ask: the next child. Which island breeds, from which parents, with which operator; then what the
operator wrote is validated (EVOLVE blocks, static rules) and deduplicated by normalized code, and
the child is stored, accepted or rejected with its reason.

Writing a child is split in two so that an LLM can write it in a worker thread: :meth:`ask` picks
everything on the controller's thread (every random draw comes from the run's one generator, in
order), the operator's ``propose`` may run anywhere, and :meth:`settle` takes its result back on
the controller's thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluators.static_rules import StaticRuleViolation, check_program, imports_of
from evolve.hashing import code_hash
from evolve.llm.coordinator import LLMCoordinator
from evolve.mutation.base import Operator, OperatorContext, OperatorFailed, Proposal
from evolve.mutation.blocks import BlockError, split_blocks
from evolve.mutation.names import describe, new_unbound_names
from evolve.mutation.polish import Polisher
from evolve.mutation.types import describe as describe_types
from evolve.mutation.types import new_type_errors
from evolve.problem import Problem
from evolve.program import FailureKind, Program, RejectionKind, Status
from evolve.store import LineageStore
from islands.archipelago import Archipelago


class UnboundNames(Exception):
    def __init__(self, unbound: dict[str, int]) -> None:
        super().__init__(f"static check: read before any assignment: {describe(unbound)}")


class TypeCheckFailed(Exception):
    def __init__(self, errors: tuple[tuple[int, str], ...]) -> None:
        super().__init__(f"type check: {describe_types(errors)}")


@dataclass
class Draft:
    """A child about to be written: its record so far, the operator and what it works from."""

    child: Program
    operator: Operator
    parents: list[Program]
    ctx: OperatorContext

    def write(self) -> Proposal:
        return self.operator.propose(self.parents, self.ctx)


class Proposer:
    def __init__(
        self,
        store: LineageStore,
        problem: Problem,
        archipelago: Archipelago,
        operators: dict[str, Operator],
        weights: dict[str, float],
        llm: LLMCoordinator | None,
        rng: np.random.Generator,
        random_search: bool = False,
        allowed_imports: Iterable[str] = (),
        polisher: Polisher | None = None,
    ) -> None:
        """``random_search``: every child is bred from the seed (the baseline of islands.selection);
        ``allowed_imports``: what a child may import beyond the problem's own list (problem.allowed_imports
        of the config) and its seed's imports; ``polisher``: tunes the constants of the islands' bests."""
        self.store, self.problem, self.archipelago = store, problem, archipelago
        self.operators, self.weights, self.llm, self.rng = operators, weights, llm, rng
        self.random_search = random_search
        self.stop_reason: str | None = None  # set when no operator can make a child any more
        self.allowed_imports = problem.allowed_imports | frozenset(allowed_imports)
        self.polisher = polisher

    def allow_imports_of(self, seed_code: str) -> None:
        """A program may always import what its seed imports."""
        self.allowed_imports |= imports_of(seed_code)

    def ask(self, island: int, spent: int = 0) -> Draft | None:
        """The next child to write on ``island`` (a failed LLM child's repair comes first, then a polish
        trial of an island's best), or None when no operator can make one (``stop_reason`` says why).
        ``spent``: children that spent budget so far (the polish share is counted against it)."""
        llm_spent = self.llm.budget_spent() if self.llm else None
        if self.llm and self.llm.repair_op and self.llm.repairs and not llm_spent:
            failed = self.llm.next_repair()
            if failed is not None:
                return self._draft(self.llm.repair_op, [failed], [], failed.island)
        if self.polisher is not None and (polish := self._polish_trial(spent)) is not None:
            return polish
        parent_ids = [self.archipelago.select(island, self.rng).program_id]
        mates = self.archipelago.inspirations(island, self.rng, set(parent_ids))
        if self.random_search:
            parent_ids, mates = [self.store.seed_id()], []
        # Crossover needs mates: early on (one elite) only single-parent operators are eligible.
        names = [
            n
            for n, op in self.operators.items()
            if op.num_parents <= 1 + len(mates) and not (llm_spent and op.blocking)
        ]
        if not names:
            self.stop_reason = llm_spent or "no operator can make a child"
            return None
        weights = np.array([self.weights[n] for n in names])
        op = self.operators[names[int(self.rng.choice(len(names), p=weights / weights.sum()))]]
        parent_ids += [m.program_id for m in mates[: op.num_parents - 1]]
        # The elites not used as parents are the operator's inspirations: one draw serves both.
        by_id = {p.id: p for p in self.store.get_many({*parent_ids, *(m.program_id for m in mates)})}
        inspirations = [by_id[m.program_id] for m in mates if m.program_id not in parent_ids]
        return self._draft(op, [by_id[i] for i in parent_ids], inspirations, island)

    def _polish_trial(self, spent: int) -> Draft | None:
        assert self.polisher is not None
        bests = {c.best_program_id for c in self.archipelago.counters} - {None}
        self.polisher.want(self.store.get_many(bests), spent)  # type: ignore[arg-type]
        trial = self.polisher.next_trial(spent)
        if trial is None:
            return None
        target, op = trial
        return self._draft(op, [target], [], target.island)

    def _draft(self, op: Operator, parents: list[Program], inspirations: list[Program], island: int) -> Draft:
        ctx = OperatorContext(self.problem, np.random.default_rng(int(self.rng.integers(2**63))), inspirations)
        child = Program(
            code="",
            parent_ids=[p.id for p in parents if p.id is not None],
            operator=op.name,
            island=island,
            generation=1 + max(p.generation for p in parents),
        )
        if op.blocking and self.llm is not None:
            self.llm.prepare(ctx, parents, self.rng)
        return Draft(child, op, parents, ctx)

    def settle(self, draft: Draft, written: Callable[[], Proposal], start_now: bool) -> Program:
        """Take the operator's result, validate and dedup it, and store the child: ``evaluating`` when
        ``start_now`` (a slot is free), else ``proposed``; or ``rejected`` with the reason."""
        child, calls = draft.child, []
        try:
            proposal = written()
            child.code, child.operator_info, child.llm = proposal.code, proposal.info, proposal.llm
            calls = proposal.calls
            split_blocks(child.code)
            check_program(child.code, self.allowed_imports, self.problem.code_rules)
            if unbound := new_unbound_names(child.code, (p.code for p in draft.parents)):
                raise UnboundNames(unbound)
            if wrong := new_type_errors(child.code, [p.code for p in draft.parents], self.problem.block_types):
                raise TypeCheckFailed(wrong)
            child.code_hash = proposal.code_hash or code_hash(child.code)
        except OperatorFailed as exc:
            child.operator_info, child.llm = exc.info, exc.llm
            return self._reject(child, RejectionKind.OPERATOR, str(exc), None, exc.calls)
        except (SyntaxError, BlockError) as exc:
            return self._reject(child, RejectionKind.INVALID, f"syntax: {exc}", FailureKind.SYNTAX, calls)
        except StaticRuleViolation as exc:
            return self._reject(child, RejectionKind.INVALID, f"static rule {exc}", FailureKind.STATIC_RULE, calls)
        except (UnboundNames, TypeCheckFailed) as exc:
            return self._reject(child, RejectionKind.INVALID, str(exc), FailureKind.STATIC_RULE, calls)
        except Exception as exc:  # noqa: BLE001 (a reply that trips an operator bug must not end the run)
            return self._reject(
                child,
                RejectionKind.OPERATOR,
                f"{child.operator}: operator error {type(exc).__name__}: {exc}",
                None,
                calls,
            )
        original = self.store.find_by_hash(child.code_hash)
        if original is not None:
            child.duplicate_of = original
            return self._reject(child, RejectionKind.DUPLICATE_CODE, f"duplicate of program {original}", None, calls)
        child.status = Status.EVALUATING if start_now else Status.PROPOSED
        self.store.propose(child, calls, self.rng.bit_generator.state)
        return child

    def _reject(
        self, child: Program, kind: RejectionKind, reason: str, failure: FailureKind | None, calls: list[Any]
    ) -> Program:
        child.status, child.rejection, child.reason, child.failure_kind = Status.REJECTED, kind, reason, failure
        child.code_hash = child.code_hash or code_hash(child.code)
        self.store.reject(child, calls, self.rng.bit_generator.state)
        return child
