"""Genetic operators: always parseable, confined to EVOLVE blocks, changing something."""

from __future__ import annotations

import ast

import numpy as np
import pytest

from evolve.hashing import code_hash
from evolve.loader import builtin_problems, load_problem_folder
from evolve.mutation import ast_ops
from evolve.mutation.ast_ops import EditFailed, Mutator, _in_scope_names, crossover
from evolve.mutation.blocks import block_bodies, split_blocks
from evolve.problem import Problem


def _fixed_parts(code: str) -> list[str]:
    return [s.text for s in split_blocks(code) if not s.evolvable]


@pytest.mark.parametrize("problem_name", ["function_min", "optimizer_discovery"])
def test_mutation_and_crossover_parse_and_keep_code_outside_blocks(problem_name: str) -> None:
    problem = load_problem_folder(builtin_problems()[problem_name], {})
    seeds = list(problem.seed_programs().values())
    mutator = Mutator(problem.primitives)
    rng = np.random.default_rng(0)
    changed = failed = 0
    for i in range(300):
        parent = seeds[i % len(seeds)]
        try:
            child, edits = mutator.mutate(parent, rng, max_edits=3)
        except EditFailed:  # the operator retries these; they must stay rare
            failed += 1
            continue
        ast.parse(child)
        assert _fixed_parts(child) == _fixed_parts(parent)
        assert edits
        changed += code_hash(child) != code_hash(parent)
        mate = seeds[(i + 1) % len(seeds)]
        kid, _ = crossover(parent, mate, rng)
        ast.parse(kid)
        assert _fixed_parts(kid) == _fixed_parts(parent)
    assert changed > 250 and failed < 15


def test_new_names_come_from_the_enclosing_function_only() -> None:
    code = (
        "def init_state(param):\n    return {'m': param}\n\n"
        "def update(param, grad, state, lr, step):\n    m = state['m']\n    d = grad\n    return param - lr * d\n"
    )
    trees = [ast.parse(b) for b in block_bodies(code)]
    ret = [n for n in ast.walk(trees[0]) if isinstance(n, ast.Return)]
    assert _in_scope_names(trees, ret[0].value) == ["param"]  # not grad, lr, m...
    assert set(_in_scope_names(trees, ret[1].value)) == {"param", "grad", "state", "lr", "step", "m", "d"}


def test_templates_wrap_a_subexpression_with_the_problems_idioms() -> None:
    from evolve.problem import Primitives

    code = "def update(param, grad, state, lr, step):\n    d = grad\n    return param - lr * d\n"
    mutator = Mutator(
        Primitives(constants=(0.01,), templates=("{x} / (torch.abs({n}) + {c})", "{c} * {x} + (1 - {c}) * {n}"))
    )
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        trees = [ast.parse(b) for b in block_bodies(code)]
        try:
            mutator.apply_template(trees, rng)
        except EditFailed:
            continue
        seen.add(ast.unparse(trees[0]))
    assert (
        "def update(param, grad, state, lr, step):\n    d = grad / (torch.abs(grad) + 0.01)\n"
        "    return param - lr * d" in seen
    )
    assert any("0.01 * d + (1 - 0.01) * " in s for s in seen)  # the same constant in both places
    assert all("__evolve_x__" not in s for s in seen)


def test_unbound_names_are_those_read_before_any_assignment() -> None:
    from evolve.mutation.names import new_unbound_names, unbound_names

    parent = "import torch\n\ndef update(param, grad, state, step):\n    d = torch.tanh(grad)\n    return d, state\n"
    deleted = parent.replace("    d = torch.tanh(grad)\n", "")
    moved = "import torch\n\ndef update(param, grad, state, step):\n    e = d * 2\n    d = grad\n    return e, state\n"
    assert unbound_names(parent) == {}
    assert unbound_names(deleted) == {"d": 4} and unbound_names(moved) == {"d": 4}
    assert unbound_names("def f(:\n") == {}  # the syntax check reports that one
    injected = "def update(param, grad):\n    return HARNESS_SCALE * grad\n"  # a name the harness provides
    assert unbound_names(injected) == {"HARNESS_SCALE": 2}
    assert new_unbound_names(injected.replace("grad\n", "grad + 1\n"), [injected]) == {}


@pytest.mark.parametrize("problem_name", ["function_min", "optimizer_discovery"])
def test_genetic_children_never_read_a_name_they_do_not_bind(problem_name: str) -> None:
    """The raw edits do leave names unbound (deleting an assignment, duplicating a statement above it) and
    make type errors (tests/test_types.py); the operators discard those and try again, so no such child
    reaches an evaluation."""
    from evolve.mutation.base import OperatorContext, OperatorFailed
    from evolve.mutation.genetic import AstCrossover, AstMutate
    from evolve.mutation.names import unbound_names
    from evolve.mutation.types import new_type_errors
    from evolve.program import Program

    problem = load_problem_folder(builtin_problems()[problem_name], {})
    seeds = list(problem.seed_programs().values())
    mutator, rng = Mutator(problem.primitives), np.random.default_rng(1)
    raw = raw_typed = 0
    for i in range(300):
        try:
            code = mutator.mutate(seeds[i % len(seeds)], rng, max_edits=3)[0]
        except EditFailed:
            continue
        raw += bool(unbound_names(code))
        raw_typed += bool(new_type_errors(code, [seeds[i % len(seeds)]], problem.block_types))
    # else this test could not fail (function_min's few declared kinds make type errors rarer)
    assert raw > 0 and raw_typed > (10 if problem_name == "optimizer_discovery" else 0)
    mutate, cross = AstMutate(max_edits=3, max_attempts=20), AstCrossover(max_attempts=20)
    ctx = OperatorContext(problem, np.random.default_rng(2))
    made = 0
    for i in range(300):
        a = Program(code=seeds[i % len(seeds)], operator="seed", island=0)
        b = Program(code=seeds[(i + 1) % len(seeds)], operator="seed", island=0)
        for op, parents in ((mutate, [a]), (cross, [a, b])):
            try:
                child = op.propose(parents, ctx).code
            except OperatorFailed:
                continue
            made += 1
            assert not unbound_names(child), child
            assert not new_type_errors(child, [p.code for p in parents], problem.block_types), child
    assert made > 400


def _optimizer_fingerprint(problem: Problem, code: str) -> str:
    from problems.optimizer_discovery.probe import probe, scale_free
    from problems.optimizer_discovery.problem import load_rule

    return problem.fingerprint_of({"probe": scale_free(probe(*load_rule(code)))})


def test_add_state_turns_sgd_into_rmsprop_and_momentum_in_one_edit() -> None:
    """The coordinated edit (a new state entry: created, advanced, returned and used) reaches known rules in
    one step, and every (update, use) pair of the problem's makes a child that type-checks and runs."""
    from evolve.mutation.types import type_errors
    from problems.optimizer_discovery.probe import probe
    from problems.optimizer_discovery.problem import load_rule

    problem = load_problem_folder(builtin_problems()["optimizer_discovery"], {})
    spec = problem.primitives.state
    assert spec is not None and problem.block_types is not None
    seeds = problem.seed_programs()
    rmsprop = _optimizer_fingerprint(problem, seeds["rmsprop"])
    momentum = _optimizer_fingerprint(problem, seeds["momentum"].replace("+ grad", "+ 0.1 * grad"))
    mutator, rng = Mutator(problem.primitives), np.random.default_rng(0)
    reached = set()
    for advance in spec.updates:
        for use in spec.uses:
            for _ in range(8):  # over the decays drawn
                trees = ast_ops._parse_blocks(seeds["sgd"])
                mutator.add_state(trees, rng, advance, use)
                child = ast_ops._unparse_blocks(seeds["sgd"], trees)
                assert type_errors(child, problem.block_types) == (), child
                probe(*load_rule(child))  # runs
                reached.add(_optimizer_fingerprint(problem, child))
    assert rmsprop in reached and momentum in reached
    trees = ast_ops._parse_blocks(seeds["adafactor"])  # its state is built under a name: the edit says so
    with pytest.raises(EditFailed, match="dict literals"):
        mutator.add_state(trees, rng)


@pytest.mark.parametrize(
    "template", load_problem_folder(builtin_problems()["optimizer_discovery"], {}).primitives.templates
)
def test_every_optimizer_template_on_the_step_makes_a_rule_that_runs(template: str) -> None:
    from evolve.mutation.types import type_errors
    from problems.optimizer_discovery.probe import probe
    from problems.optimizer_discovery.problem import load_rule

    problem = load_problem_folder(builtin_problems()["optimizer_discovery"], {})
    assert problem.block_types is not None
    code = problem.seed_programs()["adam"]
    trees = ast_ops._parse_blocks(code)
    returned = next(
        n for t in trees for n in ast.walk(t) if isinstance(n, ast.Return) and isinstance(n.value, ast.Tuple)
    )
    assert isinstance(returned.value, ast.Tuple)
    mutator = Mutator(problem.primitives)
    returned.value.elts[0] = mutator._render(
        template, {"x": returned.value.elts[0]}, ["grad"], np.random.default_rng(0)
    )
    child = ast_ops._unparse_blocks(code, trees)
    assert type_errors(child, problem.block_types) == ()
    probe(*load_rule(child))


def test_the_newton_schulz_template_pushes_a_matrix_towards_orthogonal() -> None:
    """Muon's step in one edit: the template's singular values sit nearer 1 than the input's (scaled to the
    same largest one), and a vector passes unchanged."""
    import torch

    from problems.optimizer_discovery.problem import NEWTON_SCHULZ

    g = torch.randn(16, 8, generator=torch.Generator().manual_seed(0)) @ torch.diag(torch.logspace(-2, 0, 8))
    out = eval(NEWTON_SCHULZ.format(x="g"), {"torch": torch, "g": g})  # noqa: S307 (the project's own template)
    before, after = torch.linalg.svdvals(g), torch.linalg.svdvals(out)
    assert (after.min() / after.max()) > 2 * (before.min() / before.max())  # one quintic step: about x3.4
    v = torch.randn(5)
    assert torch.equal(eval(NEWTON_SCHULZ.format(x="v"), {"torch": torch, "v": v}), v)  # noqa: S307
