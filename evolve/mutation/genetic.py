"""The genetic operators (the offline default): AST mutation and crossover. An edit that leaves a name
read without a binding (a deleted assignment, a statement moved above it), or that fails the problem's type
check (a number where a tensor goes, a state key never created), is discarded and another tried."""

from __future__ import annotations

from evolve.hashing import code_hash
from evolve.mutation.ast_ops import EditFailed, Mutator, crossover
from evolve.mutation.base import OperatorContext, OperatorFailed, Proposal
from evolve.mutation.names import new_unbound_names
from evolve.mutation.types import new_type_errors
from evolve.program import Program


def _sound(code: str, parents: list[str], ctx: OperatorContext) -> bool:
    """No name read without a binding, no type error, that the parents did not already have."""
    return not new_unbound_names(code, parents) and not new_type_errors(code, parents, ctx.problem.block_types)


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
        parent_hash = parent.code_hash or code_hash(parent.code)
        for _ in range(self.max_attempts):
            try:
                code, edits = mutator.mutate(parent.code, ctx.rng, self.max_edits)
            except (EditFailed, SyntaxError):
                continue
            if code == parent.code or not _sound(code, [parent.code], ctx):
                continue
            if (h := code_hash(code)) != parent_hash:
                return Proposal(code, {"edits": edits}, code_hash=h)
        raise OperatorFailed(f"ast_mutate: no changed child after {self.max_attempts} attempts")


class AstCrossover:
    name = "ast_crossover"
    num_parents = 2
    blocking = False

    def __init__(self, max_attempts: int) -> None:
        self.max_attempts = max_attempts

    def propose(self, parents: list[Program], ctx: OperatorContext) -> Proposal:
        a, b = parents[0], parents[1]
        hashes = {a.code_hash or code_hash(a.code), b.code_hash or code_hash(b.code)}
        for _ in range(self.max_attempts):
            try:
                code, how = crossover(a.code, b.code, ctx.rng)
            except (EditFailed, SyntaxError):
                continue
            if not _sound(code, [a.code, b.code], ctx):
                continue
            if (h := code_hash(code)) not in hashes:
                return Proposal(code, {"crossover": how}, code_hash=h)
        raise OperatorFailed(f"ast_crossover: no new child after {self.max_attempts} attempts")
