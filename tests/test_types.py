"""The static type check of children (evolve/mutation/types.py): each rule refuses a child that really fails
when it runs (the optimizer's own probe raises), refuses no child that runs, agrees with torch itself, and is
applied by the genetic operators and the proposer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evolve.loader import builtin_problems, load_problem_folder
from evolve.mutation import types
from evolve.mutation.types import new_type_errors, type_errors
from problems.optimizer_discovery.probe import probe
from problems.optimizer_discovery.problem import load_rule

OPT = load_problem_folder(builtin_problems()["optimizer_discovery"], {})
TYPES = OPT.block_types
assert TYPES is not None
ADAM = OPT.seed_programs()["adam"]


def _rule(update_body: str, init: str = 'return {"m": torch.zeros_like(param)}') -> str:
    def indented(text: str) -> str:
        return "\n".join("    " + line for line in text.strip().splitlines())

    return (
        "import math\n\nimport torch\n\n\n# EVOLVE-BLOCK-START\ndef init_state(param):\n" + indented(init) + "\n\n\n"
        "def update(param, grad, state, step, total_steps):\n" + indented(update_body) + "\n# EVOLVE-BLOCK-END\n"
    )


REFUSED = {
    "the state as a tensor": ("d = torch.tanh(state)\nreturn d, state", "torch.tanh is given the state dict"),
    "a number as a tensor": ("d = torch.zeros_like(0.5) + grad\nreturn d, state", "needs a tensor, not a number"),
    "arithmetic on the state": ("return grad * state, state", "arithmetic on the state dict"),
    "clamp mixing bounds": (
        "return torch.clamp(grad, min=state['m'], max=0.5), state",
        "bounds mix a tensor and a number",
    ),
    "a key never created": ("return grad + state['v'], state", "reads state['v'], a key the state never has"),
    "a key the update drops": (
        "m = state['m'] + grad\nreturn m, {'n': m}",
        "which the state update returns drops",
    ),
    "a tensor method on a number": ("s = step.sqrt()\nreturn grad * s, state", "calls .sqrt() on a number"),
    "a number from math into torch": (
        "return grad * torch.sqrt(math.sqrt(step)), state",
        "torch.sqrt needs a tensor",
    ),
    "a number as the direction": ("return 0.5, state", "update returns a number where the contract has a tensor"),
    "a number in the state": ("return grad, {'m': 1.0}", "state entry 'm' is a number"),
    "a bare direction": ("return grad", "update returns a tensor, not a tuple"),
    "three values": ("return grad, state, 1", "update returns 3 values"),
    "read before assignment": ("m = 0.9 * m + grad\nreturn m, {'m': m}", "reads 'm' before any assignment"),
    "an unguarded second dimension": (
        "n = grad.shape[1]\nreturn grad / n, state",
        "reads .shape[1] with no test of the tensor's dimensions",
    ),
    "a float dimension": ("n = grad.shape[0.9]\nreturn grad / n, state", "indexes a shape with a float"),
    "a matrix product of numbers": ("a = 0.5\nreturn grad * (a @ a), state", "a matrix product (@) with a number"),
    "a helper's mistake": (
        "def scale(x):\n    return torch.mean(5 * 5) * x\nreturn scale(grad), state",
        "torch.mean needs a tensor",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_each_rule_refuses_a_child_that_really_fails(case: str) -> None:
    body, reason = REFUSED[case]
    code = _rule(body)
    found = type_errors(code, TYPES)
    assert any(reason in r for _, r in found), found
    with pytest.raises(Exception):  # noqa: B017, PT011 (whatever it raises, it fails at its first call)
        probe(*load_rule(code))


ACCEPTED = {
    "a failure caught by try": (
        "try:\n    d = torch.tanh(state)\nexcept Exception as e:\n    d = grad + len(str(e)) * 0\nreturn d, state",
    ),
    "keys tested before reading": ("m = state['v'] if 'v' in state else grad\nreturn m, {'m': m, 'v': m}",),
    "a reshaped tensor's second dimension": (
        "g = grad.reshape(grad.shape[0], -1)\nn = g.shape[1]\nreturn grad / n, state",
    ),
    "a shape test under a name": (
        "is_matrix = grad.ndim == 2\nn = grad.shape[1] if is_matrix else 1\nreturn grad / n, state",
    ),
    "a kind that changes across loop iterations": (
        "d = 1.0\nfor i in range(3):\n    d = torch.sqrt(torch.abs(d)) if i else grad\nreturn d, state",
    ),
    "an import inside the function": ("import math as m2\nreturn grad * m2.sqrt(2.0), state",),
    "an early return for vectors": (
        "if param.ndim < 2:\n    return grad, state\nn = grad.shape[1]\nreturn grad / n, state",
    ),
    "a guarded second dimension": ("n = grad.shape[1] if grad.ndim == 2 else 1\nreturn grad / n, state",),
    "numbers in torch where and clamp": (
        "d = torch.where(grad > 0, grad, 0.0)\nreturn torch.clamp(d, min=-1.0, max=1.0), state",
    ),
    "math on the step": ("c = 1 - 0.9 ** step\nreturn grad / math.sqrt(c), {'m': state['m']}",),
    "a scalar tensor through math": ("r = math.sqrt(torch.mean(grad * grad))\nreturn grad / (r + 1e-8), state",),
    "a state read with get": ("m = state.get('v', grad)\nreturn m, state",),
    "a bound-in-a-loop name": (
        "for i in range(2):\n    if i:\n        grad = grad + acc\n    acc = grad\nreturn grad, state",
    ),
    "the state rebuilt from a comprehension": ("return grad, {k: v * 0.5 for k, v in state.items()}",),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_no_child_that_runs_is_refused(case: str) -> None:
    code = _rule(ACCEPTED[case][0])
    probe(*load_rule(code))  # it runs
    assert type_errors(code, TYPES) == ()


def test_a_state_built_by_item_assignment_has_the_keys_it_is_given() -> None:
    code = _rule("return grad + state['v'], state", init="s = {}\ns['v'] = torch.zeros_like(param)\nreturn s")
    probe(*load_rule(code))
    assert type_errors(code, TYPES) == ()


def test_branches_that_build_different_states_are_one_state() -> None:
    """Adafactor's init creates row/col for matrices and v for vectors: every key is some branch's."""
    code = OPT.seed_programs()["adafactor"]
    probe(*load_rule(code))
    assert type_errors(code, TYPES) == ()
    assert any("'w'" in r for _, r in type_errors(code.replace('state["v"]', 'state["w"]'), TYPES))


@pytest.mark.parametrize("problem_name", ["function_min", "optimizer_discovery"])
def test_every_seed_passes(problem_name: str) -> None:
    problem = load_problem_folder(builtin_problems()[problem_name], {})
    assert problem.block_types is not None
    for name, code in problem.seed_programs().items():
        assert type_errors(code, problem.block_types) == (), name


def test_the_torch_rules_are_torchs() -> None:
    """What the tables claim of torch holds in the installed torch."""
    t = torch.ones(3)
    for name in types.TENSOR_INPUT:
        with pytest.raises(TypeError):
            getattr(torch, name)(0.5)
    for name in types.TENSOR_PAIR:
        with pytest.raises(TypeError):
            getattr(torch, name)(t, 0.5)
    for name in types.CLAMPS:
        with pytest.raises(TypeError):
            getattr(torch, name)(t, min=t, max=0.5)
    for method in types.TENSOR_METHODS:
        assert not hasattr(0.5, method) and not hasattr(3, method), method
        assert hasattr(t, method), method


def test_an_error_the_parent_has_is_not_the_childs() -> None:
    parent = _rule("n = grad.shape[1]\nreturn grad / n, state")
    child = parent.replace("grad / n", "grad / (n + 1)")
    assert type_errors(child, TYPES) and new_type_errors(child, [parent], TYPES) == ()
    assert new_type_errors(child, [parent], None) == ()


def test_a_written_child_that_fails_the_check_is_rejected_as_invalid(tmp_path: Path) -> None:
    """The proposer's side (an LLM's child): stored as rejected, with the line and the reason, no evaluation."""
    from test_proposer import SEED, _proposer, _settle

    from evolve.program import FailureKind, RejectionKind, Status

    proposer, store, op = _proposer(tmp_path)
    op.next = SEED.replace("step = 3.0", "step = dim.mean()")
    stored = store.get(_settle(proposer).stored_id)
    assert (stored.status, stored.rejection, stored.failure_kind) == (
        Status.REJECTED,
        RejectionKind.INVALID,
        FailureKind.STATIC_RULE,
    )
    assert "type check: line" in (stored.reason or "") and ".mean() on a number" in (stored.reason or "")
    assert store.submitted_children() == 0


def test_code_after_a_return_is_never_judged() -> None:
    code = _rule("return grad, state\nd = torch.tanh(state)")
    probe(*load_rule(code))
    assert type_errors(code, TYPES) == ()


def test_a_branch_under_a_test_already_left_on_is_never_judged() -> None:
    """A duplicated `if param.ndim == 2: ... return` (a genetic artefact): the second copy never runs."""
    body = (
        "if param.ndim == 2:\n    return grad, state\n"
        "if param.ndim == 2:\n    return torch.tanh(state), state\nreturn grad, state"
    )
    code = _rule(body)
    probe(*load_rule(code))
    assert type_errors(code, TYPES) == ()
    rebound = body.replace("return grad, state\nif", "return grad, state\nparam = grad\nif", 1)
    assert type_errors(_rule(rebound), TYPES)  # the test's name rebound between: the second copy may run
