"""The Operator interface and the genetic operators (the offline default).

An operator turns parent programs into one child's code. It may fail (no usable edit, a bad
LLM reply): it then raises :class:`OperatorFailed` and the controller records a rejected child
with the reason. LLM operators implement the same interface and may fill ``Proposal.llm``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from evolve.mutation.ast_ops import EditFailed, Mutator, crossover
from evolve.config import ConfigError, OperatorsConfig
from evolve.mutation.blocks import code_hash
from evolve.problem import Problem
from evolve.program import Program


class OperatorFailed(Exception):
    """The operator could not produce a child; the message is stored as the rejection reason.

    An LLM operator attaches what it has (``llm``: Program.llm_* fields, ``calls``: every attempt)
    so that a rejected child keeps its prompt, reply and cost.
    """

    def __init__(self, message: str, llm: dict[str, Any] | None = None, calls: list[Any] | None = None,
                 info: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.llm, self.calls, self.info = llm or {}, calls or [], info or {}


@dataclass
class OperatorContext:
    problem: Problem
    rng: np.random.Generator  # a generator of the operator's own, derived from the run's RNG
    inspirations: list[Program] = field(default_factory=list)
    # Filled for LLM operators only (gathered from the store by the controller's thread):
    model: str | None = None  # which model writes this child
    ancestors: list[Program] = field(default_factory=list)  # parent's parent first, then further back
    insight: str | None = None  # the latest insights note of the run
    tried: list[Program] = field(default_factory=list)  # recent children of the same parent


@dataclass
class Proposal:
    code: str
    info: dict[str, Any] = field(default_factory=dict)
    llm: dict[str, Any] = field(default_factory=dict)  # Program.llm_* fields, for LLM operators
    calls: list[Any] = field(default_factory=list)  # evolve.llm.client.CallRecord, one per attempt


class Operator(Protocol):
    name: str
    num_parents: int
    blocking: bool  # True when propose() waits on I/O (LLMs): the controller runs it in a thread

    def propose(self, parents: list[Program], ctx: OperatorContext) -> Proposal: ...


class AstMutate:
    name = "ast_mutate"
    num_parents = 1
    blocking = False

    def __init__(self, max_edits: int, max_attempts: int) -> None:
        self.max_edits = max_edits
        self.max_attempts = max_attempts

    def propose(self, parents: list[Program], ctx: OperatorContext) -> Proposal:
        parent = parents[0]
        mutator = Mutator(ctx.problem.primitives)
        parent_hash = code_hash(parent.code)
        for _ in range(self.max_attempts):
            try:
                code, edits = mutator.mutate(parent.code, ctx.rng, self.max_edits)
            except (EditFailed, SyntaxError):
                continue
            if code_hash(code) != parent_hash:
                return Proposal(code, {"edits": edits})
        raise OperatorFailed(f"ast_mutate: no changed child after {self.max_attempts} attempts")


class AstCrossover:
    name = "ast_crossover"
    num_parents = 2
    blocking = False

    def __init__(self, max_attempts: int) -> None:
        self.max_attempts = max_attempts

    def propose(self, parents: list[Program], ctx: OperatorContext) -> Proposal:
        a, b = parents[0], parents[1]
        hashes = {code_hash(a.code), code_hash(b.code)}
        for _ in range(self.max_attempts):
            try:
                code, how = crossover(a.code, b.code, ctx.rng)
            except (EditFailed, SyntaxError):
                continue
            if code_hash(code) not in hashes:
                return Proposal(code, {"crossover": how})
        raise OperatorFailed(f"ast_crossover: no new child after {self.max_attempts} attempts")


LLM_OPERATORS = ("llm_diff", "llm_rewrite", "llm_crossover")


def build_operators(cfg: OperatorsConfig, llm: Any = None) -> tuple[dict[str, Operator], dict[str, float]]:
    """The run's operators and their selection weights (zero-weight ones left out).

    ``llm`` is an :class:`evolve.mutation.llm_ops.LLMTools`; without it the LLM operators are
    left out (the run uses genetic operators only).
    """
    factories = {
        "ast_mutate": lambda: AstMutate(cfg.mutations_per_child, cfg.max_attempts),
        "ast_crossover": lambda: AstCrossover(cfg.max_attempts),
    }
    if llm is not None:
        from evolve.mutation.llm_ops import llm_operator

        factories.update({name: (lambda n=name: llm_operator(n, llm)) for name in LLM_OPERATORS})
    unknown = sorted(set(cfg.weights) - set(factories) - set(LLM_OPERATORS))
    if unknown:
        raise ConfigError(f"operators.weights: unknown operator(s) {unknown} "
                          f"(known: {sorted(set(factories) | set(LLM_OPERATORS))})")
    ops = {name: factories[name]() for name, w in cfg.weights.items() if w > 0 and name in factories}
    if not ops:
        raise ConfigError("operators.weights: no usable operator (LLM operators need llm.models; "
                          "give ast_mutate or ast_crossover a positive weight, or configure a model)")
    return ops, {n: cfg.weights[n] for n in ops}
