"""Names a program reads that nothing binds at that point, found by pyflakes.

A child that reads a name an edit deleted, or reads it before its assignment, fails at its first call: the
most common waste of a genetic operator. Caught here it costs no evaluation: the genetic operators try
another edit, and a child that still has one (an LLM's) is stored as rejected with the name and line.

Only names the parents do not already leave unbound count, so a problem whose programs rely on names the
harness injects (a peer layout's module globals) is not refused for them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import lru_cache

from pyflakes import checker, messages

_UNBOUND = (messages.UndefinedName, messages.UndefinedLocal)


@lru_cache(maxsize=4096)  # a parent is checked once, not once per attempt and again by the proposer
def unbound_names(code: str) -> dict[str, int]:
    """Each name ``code`` reads without a binding in reach, with the first line that does; {} when the code
    does not parse (the syntax check reports that). Shared between callers: do not modify the result."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return {}
    found: dict[str, int] = {}
    for message in checker.Checker(tree, filename="candidate.py").messages:
        if isinstance(message, _UNBOUND):
            found.setdefault(str(message.message_args[0]), int(message.lineno))
    return found


def new_unbound_names(code: str, parents: Iterable[str]) -> dict[str, int]:
    """The unbound names of ``code`` that none of ``parents`` already has."""
    inherited = {name for parent in parents for name in unbound_names(parent)}
    return {name: line for name, line in unbound_names(code).items() if name not in inherited}


def describe(unbound: dict[str, int]) -> str:
    return ", ".join(f"'{name}' (line {line})" for name, line in sorted(unbound.items(), key=lambda kv: kv[1]))
