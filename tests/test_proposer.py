"""The proposer on its own (a real archive, a real archipelago, function_min; a scripted operator in place of
the genetic and LLM ones): what each kind of operator result becomes, and the operators a config builds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evolve.config import ConfigError, OperatorsConfig, load_config
from evolve.hashing import code_hash
from evolve.loader import builtin_problems, load_problem_folder
from evolve.mutation.base import OperatorContext, OperatorFailed, Proposal
from evolve.operators import build_operators
from evolve.program import FailureKind, Program, RejectionKind, Status
from evolve.proposer import Proposer
from evolve.runner import create_run
from evolve.store import LineageStore
from islands.archipelago import Archipelago, ProgramSummary

PROBLEM = load_problem_folder(builtin_problems()["function_min"], {})
SEED = next(iter(PROBLEM.seed_programs().values()))


class Scripted:
    """An operator that writes what the test tells it to (or raises it)."""

    name, num_parents, blocking = "ast_mutate", 1, False

    def __init__(self) -> None:
        self.next: str | Exception = SEED

    def propose(self, parents: list[Program], ctx: OperatorContext) -> Proposal:
        if isinstance(self.next, Exception):
            raise self.next
        return Proposal(self.next, info={"scripted": True})


def _proposer(tmp_path: Path) -> tuple[Proposer, LineageStore, Scripted]:
    cfg = load_config(None, ["islands.num_islands=1"])
    store = create_run(cfg, tmp_path / "run")
    seed = Program(
        code=SEED, operator="seed", island=0, status=Status.EVALUATED, fitness=1.0, code_hash=code_hash(SEED)
    )
    store.add_seed(seed)
    archipelago = Archipelago(cfg.islands, PROBLEM.descriptors)
    archipelago.seed(ProgramSummary(seed.stored_id, 1.0, {d.name: d.low for d in PROBLEM.descriptors}))
    op = Scripted()
    proposer = Proposer(store, PROBLEM, archipelago, {op.name: op}, {op.name: 1.0}, None, np.random.default_rng(0))
    proposer.allow_imports_of(SEED)
    return proposer, store, op


def _settle(proposer: Proposer, start_now: bool = True) -> Program:
    draft = proposer.ask(0)
    assert draft is not None and draft.parents[0].is_seed and draft.child.generation == 1
    return proposer.settle(draft, draft.write, start_now)


def test_a_new_child_is_stored_with_the_runs_generator_state(tmp_path: Path) -> None:
    proposer, store, op = _proposer(tmp_path)
    op.next = SEED.replace("step = 3.0", "step = 2.0")
    child = _settle(proposer)
    assert child.status == Status.EVALUATING and child.operator_info == {"scripted": True}
    assert store.get(child.stored_id).code == op.next and store.get(child.stored_id).parent_ids == [1]
    assert store.load_rng_state() == proposer.rng.bit_generator.state
    op.next = SEED.replace("step = 3.0", "step = 1.0")
    assert _settle(proposer, start_now=False).status == Status.PROPOSED  # no free slot: it waits


@pytest.mark.parametrize(
    ("written", "rejection", "failure", "reason"),
    [
        ("def search(:\n", RejectionKind.INVALID, FailureKind.SYNTAX, "syntax"),
        ("import os\n" + SEED, RejectionKind.INVALID, FailureKind.STATIC_RULE, "static rule"),
        (SEED.replace("fx = f(x)", "fx = f(y)"), RejectionKind.INVALID, FailureKind.STATIC_RULE, "y"),
        (OperatorFailed("no usable edit"), RejectionKind.OPERATOR, None, "no usable edit"),
        (KeyError("a bug in the operator"), RejectionKind.OPERATOR, None, "operator error KeyError"),
        (SEED.replace("step = 3.0", "step  =  3.0  # same code"), RejectionKind.DUPLICATE_CODE, None, "program 1"),
    ],
)
def test_what_cannot_be_trained_is_rejected_with_its_reason(
    tmp_path: Path, written: str | Exception, rejection: RejectionKind, failure: FailureKind | None, reason: str
) -> None:
    proposer, store, op = _proposer(tmp_path)
    op.next = written
    child = _settle(proposer)
    stored = store.get(child.stored_id)
    assert (stored.status, stored.rejection, stored.failure_kind) == (Status.REJECTED, rejection, failure)
    assert reason in (stored.reason or ""), stored.reason
    assert store.submitted_children() == 0  # a rejected child costs no evaluation
    if rejection == RejectionKind.DUPLICATE_CODE:
        assert stored.duplicate_of == 1


def test_no_operator_for_the_parents_stops_with_a_reason(tmp_path: Path) -> None:
    proposer, _, op = _proposer(tmp_path)
    op.num_parents = 2  # crossover with a single elite: no mate to breed with
    assert proposer.ask(0) is None and proposer.stop_reason == "no operator can make a child"


def test_build_operators_takes_the_weighted_ones_and_names_what_is_wrong() -> None:
    ops, weights = build_operators(OperatorsConfig(weights={"ast_mutate": 2.0, "ast_crossover": 0.0}), None)
    assert list(ops) == ["ast_mutate"] and weights == {"ast_mutate": 2.0}
    assert ops["ast_mutate"].num_parents == 1 and not ops["ast_mutate"].blocking
    ops, _ = build_operators(OperatorsConfig(weights={"ast_mutate": 1.0, "llm_diff": 1.0}), None)
    assert list(ops) == ["ast_mutate"]  # no model configured: the LLM operators are left out
    with pytest.raises(ConfigError, match=r"unknown operator\(s\) \['ast_mutat'\]"):
        build_operators(OperatorsConfig(weights={"ast_mutat": 1.0}), None)
    with pytest.raises(ConfigError, match="no usable operator"):
        build_operators(OperatorsConfig(weights={"llm_diff": 1.0}), None)
