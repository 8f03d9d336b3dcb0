"""Code hashing: the cache's source hash ignores only comments, docstrings and formatting; the dedup hash
also drops dead statements, and only statements that cannot change what the program computes."""

from __future__ import annotations

import textwrap

import pytest

from evolve.hashing import code_hash, source_hash, without_dead_code

PARENT = """
def update(param, grad, state, step, total_steps):
    m = 0.9 * state["m"] + 0.1 * grad
    return m, {"m": m}
"""


def _with(line: str, where: str = "    m = 0.9") -> str:
    return PARENT.replace(where, textwrap.indent(line, "    ") + "\n" + where, 1)


@pytest.mark.parametrize(
    "dead",
    [
        "unused = grad * 2",
        "a, b = grad.abs(), torch.sign(grad)",
        "tmp = grad\ntmp = tmp * tmp",  # a chain that ends unread
        "acc = grad\nacc += 1.0",
        "scale = max(1.0, float(step))",
        "note = state.get('m')",
    ],
)
def test_a_statement_nothing_reads_is_dead(dead: str) -> None:
    child = _with(dead)
    assert code_hash(child) == code_hash(PARENT)
    assert source_hash(child) != source_hash(PARENT)  # the evaluation cache still tells them apart


@pytest.mark.parametrize(
    "live",
    [
        "grad = grad * 2",  # read below
        "state['m'] = grad",  # a subscript write
        "grad.mul_(2)",  # an expression statement: never dropped
        "x = grad.mul_(2)",  # an in-place call inside a dead assignment
        "x = state.pop('m')",  # a mutating method
        "x = torch.add(grad, 1, out=grad)",  # writes through out=
        "x = helper(state)",  # the program's own function may have effects
        "global counter\ncounter = 1",
        "for i in range(2):\n    junk = i",  # compound statements stay whole
        "scale = lambda: k\nk = 2.0",  # read later, when the lambda is called
    ],
)
def test_a_statement_that_may_matter_stays(live: str) -> None:
    assert code_hash(_with(live)) != code_hash(PARENT)


def test_dead_code_is_removed_only_inside_functions_and_a_body_never_empties() -> None:
    module_level = "LIMIT = 3\n" + PARENT  # a module-level name is the program's interface
    assert code_hash(module_level) != code_hash(PARENT)
    only_dead = "def f(x):\n    y = x + 1\n"
    assert without_dead_code(only_dead).strip() == "def f(x):\n    pass"


def test_comments_docstrings_and_formatting_are_ignored_by_both() -> None:
    noisy = '"""doc"""\n' + PARENT.replace("0.9 *", "0.9*  ") + "# trailing comment\n"
    assert code_hash(noisy) == code_hash(PARENT) and source_hash(noisy) == source_hash(PARENT)


def test_code_that_does_not_parse_hashes_as_its_text() -> None:
    assert code_hash("def (") == source_hash("def (") != code_hash("def ((")
