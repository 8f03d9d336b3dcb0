"""Normalized-code hashing: programs that differ only in comments, docstrings or formatting are
the same program (the controller's code dedup and the cross-run evaluation cache key on it)."""

from __future__ import annotations

import ast
import hashlib

_WITH_DOCSTRING = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def normalize(code: str) -> str:
    """Code without comments, docstrings or formatting: equal for programs that only differ there."""
    tree = ast.parse(code)
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
    return ast.unparse(tree)


def code_hash(code: str) -> str:
    try:
        text = normalize(code)
    except (SyntaxError, ValueError, RecursionError):
        text = code
    return hashlib.sha256(text.encode()).hexdigest()[:32]
