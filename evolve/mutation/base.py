"""The Operator interface that genetic and LLM operators both implement.

An operator turns parent programs into one child's code. It may fail (no usable edit, a bad LLM
reply): it then raises :class:`OperatorFailed` and the run records a rejected child with the
reason. LLM operators fill ``Proposal.llm`` with their provenance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from evolve.problem import Problem
from evolve.program import LLMProvenance, Program


class OperatorFailed(Exception):
    """The operator could not produce a child; the message is stored as the rejection reason.

    An LLM operator attaches what it has (``llm``: the provenance, ``calls``: every attempt) so that
    a rejected child keeps its prompt, reply and cost.
    """

    def __init__(
        self,
        message: str,
        llm: LLMProvenance | None = None,
        calls: list[Any] | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.llm, self.calls, self.info = llm, calls or [], info or {}


@dataclass
class OperatorContext:
    problem: Problem
    rng: np.random.Generator  # a generator of the operator's own, derived from the run's RNG
    inspirations: list[Program] = field(default_factory=list)
    # Filled for LLM operators only (gathered from the store on the controller's thread):
    model: str | None = None  # which model writes this child
    ancestors: list[Program] = field(default_factory=list)  # parent's parent first, then further back
    insight: str | None = None  # the latest insights note of the run
    tried: list[Program] = field(default_factory=list)  # recent children of the same parent


@dataclass
class Proposal:
    code: str
    info: dict[str, Any] = field(default_factory=dict)
    llm: LLMProvenance | None = None
    calls: list[Any] = field(default_factory=list)  # evolve.llm.client.CallRecord, one per attempt
    code_hash: str | None = None  # the normalized-code hash, when the operator already computed it


class Operator(Protocol):
    name: str
    num_parents: int
    blocking: bool  # True when propose() waits on I/O (LLMs): the controller runs it in a thread

    def propose(self, parents: list[Program], ctx: OperatorContext) -> Proposal: ...
