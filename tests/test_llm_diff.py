"""SEARCH/REPLACE diffs and rewrites: strict on content, tolerant of formatting noise."""

from __future__ import annotations

import pytest

from evolve.llm.diff import DiffError, apply_diff, apply_rewrite, explanation, parse_diff

PARENT = """import math

HEADER = "fixed"  # outside: never edited


def init_state(param):
    # EVOLVE-BLOCK-START
    state = {}
    lr_scale = 1.0
    return state
    # EVOLVE-BLOCK-END


def update(param, grad, state, lr, step):
    # EVOLVE-BLOCK-START
    lr_scale = 1.0
    new = param - lr * grad
    return new, state
    # EVOLVE-BLOCK-END
"""


def diff(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def test_valid_diff_changes_only_the_region() -> None:
    child = apply_diff(PARENT, parse_diff(diff("    new = param - lr * grad", "    new = param - 2 * lr * grad")))
    assert "new = param - 2 * lr * grad" in child
    assert child.replace("2 * lr", "lr") == PARENT


def test_formatting_noise_is_tolerated() -> None:
    reply = (
        "I doubled the step.\r\n```python\r\n<<<<<<< SEARCH\r\n    new = param - lr * grad   \r\n=======\r\n"
        "    new = param - 2 * lr * grad  \r\n>>>>>>> REPLACE\r\n```\r\n"
    )
    child = apply_diff(PARENT, parse_diff(reply))
    assert "    new = param - 2 * lr * grad\n" in child
    assert explanation(reply) == "I doubled the step."


def test_several_blocks_apply_in_order() -> None:
    reply = (
        diff("    state = {}", "    state = {'m': 0}")
        + "then\n"
        + diff("    return new, state", "    return new * 1, state")
    )
    child = apply_diff(PARENT, parse_diff(reply))
    assert "state = {'m': 0}" in child and "return new * 1, state" in child


@pytest.mark.parametrize(
    "reply, reason",
    [
        (diff("    new = param + lr * grad", "x"), "does not match"),
        (diff("new = param - lr * grad", "x"), "does not match"),  # indentation is content
        (diff("    lr_scale = 1.0", "    lr_scale = 2.0"), "matches 2 places"),
        (diff('HEADER = "fixed"  # outside: never edited', 'HEADER = "hacked"'), "outside the EVOLVE-BLOCK"),
        (diff("    # EVOLVE-BLOCK-END", "    pass"), "outside the EVOLVE-BLOCK"),
        (diff("", "x = 1"), "empty SEARCH"),
        ("no diff here at all", "no SEARCH/REPLACE block"),
        ("<<<<<<< SEARCH\n    state = {}\n>>>>>>> REPLACE\n", "not closed by ======="),
        ("<<<<<<< SEARCH\n    state = {}\n=======\n    state = 1\n", "not closed by >>>>>>> REPLACE"),
        (
            diff("    return state", "    return state\n    # EVOLVE-BLOCK-END\nHEADER = 2\n    # EVOLVE-BLOCK-START"),
            "outside",
        ),
    ],
)
def test_bad_diffs_reject_with_the_reason(reply: str, reason: str) -> None:
    with pytest.raises(DiffError, match=reason):
        apply_diff(PARENT, parse_diff(reply))


def test_one_bad_block_rejects_the_whole_child() -> None:
    reply = diff("    state = {}", "    state = {'m': 0}") + diff("    nope", "x")
    with pytest.raises(DiffError, match="diff block 2"):
        apply_diff(PARENT, parse_diff(reply))


def test_program_without_markers_is_one_region() -> None:
    code = "def f(x):\n    return x + 1\n"
    assert apply_diff(code, parse_diff(diff("    return x + 1", "    return x + 2"))) == "def f(x):\n    return x + 2\n"


def test_rewrite_replaces_bodies_and_keeps_the_outside() -> None:
    reply = (
        "New rule:\n```python\nstate = {'m': None}\nreturn state\n```\n"
        "```python\nnew = param - lr * torch.sign(grad)\nreturn new, state\n```\n"
    )
    child = apply_rewrite(PARENT, reply)
    assert "        new = param - lr * torch.sign(grad)\n" not in child  # indentation follows the region
    assert "    new = param - lr * torch.sign(grad)\n" in child
    assert child.startswith('import math\n\nHEADER = "fixed"')
    assert child.count("EVOLVE-BLOCK-START") == 2


def test_rewrite_accepts_a_whole_program_but_keeps_the_parents_outside() -> None:
    whole = PARENT.replace("param - lr * grad", "param - 3 * lr * grad").replace('"fixed"', '"hacked"')
    child = apply_rewrite(PARENT, f"```python\n{whole}```\n")
    assert "3 * lr * grad" in child and '"fixed"' in child and '"hacked"' not in child


@pytest.mark.parametrize(
    "reply, reason",
    [
        ("just prose", "no fenced code block"),
        ("```python\nx = 1\n```", "1 code block"),
        ("```\n\n```\n```\n\n```", "empty"),
    ],
)
def test_bad_rewrites_reject(reply: str, reason: str) -> None:
    with pytest.raises(DiffError, match=reason):
        apply_rewrite(PARENT, reply)
