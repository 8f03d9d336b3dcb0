"""Normalized-code hashing.

``source_hash``: programs that differ only in comments, docstrings or formatting are the same source
(the cross-run evaluation cache keys on it: a cached result is reused only for the same computation).
``code_hash``: the archive's code dedup goes further and also drops dead statements, so a child whose
only change is an assignment nothing reads is a duplicate of its parent and costs no evaluation.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Callable

_WITH_DOCSTRING = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
# Methods that change the object they are called on: a statement calling one is never dead.
_MUTATORS = frozenset(
    {"append", "extend", "insert", "remove", "pop", "popitem", "clear", "update", "setdefault", "sort", "reverse"}
    | {"add", "discard", "write", "send", "put"}
)
# Builtins without effects: a call of any other bare name (the program's own functions) may have one.
_PURE_BUILTINS = frozenset(
    {"abs", "min", "max", "sum", "len", "float", "int", "bool", "round", "pow", "divmod", "range", "tuple", "list"}
    | {"dict", "set", "sorted", "reversed", "zip", "enumerate", "isinstance", "str", "any", "all", "map", "filter"}
)


def normalize(code: str) -> str:
    """Code without comments, docstrings or formatting: equal for programs that only differ there."""
    return ast.unparse(_without_docstrings(ast.parse(code)))


def without_dead_code(code: str) -> str:
    """The normalized code with every dead statement of every function removed (see :func:`_prune`)."""
    tree = _without_docstrings(ast.parse(code))
    for node in ast.walk(tree):
        if isinstance(node, _FUNCTIONS):
            node.body = _prune(node.body) or [ast.Pass()]
    return ast.unparse(tree)


def source_hash(code: str) -> str:
    return _digest(code, normalize)


def code_hash(code: str) -> str:
    return _digest(code, without_dead_code)


def _digest(code: str, canonical: Callable[[str], str]) -> str:
    try:
        text = canonical(code)
    except (SyntaxError, ValueError, RecursionError):
        text = code
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _without_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        if isinstance(node, _WITH_DOCSTRING):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _prune(body: list[ast.stmt]) -> list[ast.stmt]:
    """A function body without its dead statements: an assignment (plain or augmented) to local names that
    no later statement reads, whose value has no effect (no call of a mutating or in-place method or
    of the program's own functions, no ``yield``, no walrus). Liveness runs backwards over the body's own
    statements; a compound statement (if, for, with, try...) is kept whole and everything it reads is
    live, so only straight-line dead code goes. Names declared ``global`` or ``nonlocal``, and names a
    nested function reads, are never dead."""
    facts = [_facts(stmt) for stmt in body]
    shared = set().union(*(f[1] for f in facts))
    live: set[str] = set()
    kept: list[ast.stmt] = []
    for stmt, (reads, _, effect_free) in zip(reversed(body), reversed(facts), strict=True):
        targets = _assigned_names(stmt)
        if targets is not None and not (targets & (live | shared)) and effect_free:
            continue
        if targets is not None and isinstance(stmt, ast.Assign):
            live -= targets
        live |= reads | (targets if isinstance(stmt, ast.AugAssign) and targets else set())
        kept.append(stmt)
    return kept[::-1]


def _assigned_names(stmt: ast.stmt) -> set[str] | None:
    """The names a plain or augmented assignment binds, or None for any other statement (or a target that
    is not a bare name: an attribute or subscript write always stays)."""
    if isinstance(stmt, ast.Assign):
        names: set[str] = set()
        for target in stmt.targets:
            elts = target.elts if isinstance(target, ast.Tuple | ast.List) else [target]
            if not all(isinstance(e, ast.Name) for e in elts):
                return None
            names |= {e.id for e in elts if isinstance(e, ast.Name)}
        return names
    if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
        return {stmt.target.id}
    return None


def _facts(stmt: ast.stmt) -> tuple[set[str], set[str], bool]:
    """One walk over a statement: the names it reads; the names it shares (declared ``global`` or
    ``nonlocal``, or read by a nested function or lambda, which reads them when it is called, not where it
    is defined); whether it is free of effects (no yield or walrus, no call of a mutating or in-place
    method, of ``out=``, or of a bare name other than a pure builtin)."""
    reads: set[str] = set()
    shared: set[str] = set()
    nested: list[ast.AST] = []
    effect_free = True
    for node in ast.walk(stmt):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                reads.add(node.id)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            shared.update(node.names)
        elif isinstance(node, (*_FUNCTIONS, ast.Lambda)):
            nested.append(node)
        elif effect_free and _has_effect(node):
            effect_free = False
    for fn in nested:
        shared |= _reads(fn)
    return reads, shared, effect_free


def _has_effect(node: ast.AST) -> bool:
    if isinstance(node, ast.Yield | ast.YieldFrom | ast.Await | ast.NamedExpr):
        return True
    if not isinstance(node, ast.Call):
        return False
    if isinstance(node.func, ast.Attribute):
        name = node.func.attr
        if name.endswith("_") and not name.startswith("__") or name in _MUTATORS:
            return True
    if isinstance(node.func, ast.Name) and node.func.id not in _PURE_BUILTINS:
        return True
    return any(k.arg == "out" for k in node.keywords)


def _reads(stmt: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
