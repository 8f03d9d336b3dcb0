"""EVOLVE-BLOCK regions and normalized-code hashing.

Operators may change only the text between ``# EVOLVE-BLOCK-START`` and ``# EVOLVE-BLOCK-END``;
everything outside is kept byte for byte. A program without markers is one whole block.
"""

from __future__ import annotations

import ast
import hashlib
import textwrap
from dataclasses import dataclass

START = "EVOLVE-BLOCK-START"
END = "EVOLVE-BLOCK-END"


class BlockError(ValueError):
    pass


@dataclass
class Segment:
    text: str
    evolvable: bool
    indent: str = ""


def split_blocks(code: str) -> list[Segment]:
    """Split code into alternating fixed and evolvable segments (marker lines stay fixed)."""
    lines = code.splitlines(keepends=True)
    if not any(START in ln for ln in lines):
        return [Segment(code, True)]
    segments: list[Segment] = []
    buf: list[str] = []
    inside = False
    for n, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith("#") and START in stripped:
            if inside:
                raise BlockError(f"line {n}: nested {START}")
            buf.append(line)
            segments.append(Segment("".join(buf), False))
            buf, inside = [], True
        elif stripped.startswith("#") and END in stripped:
            if not inside:
                raise BlockError(f"line {n}: {END} without {START}")
            segments.append(_evolvable("".join(buf)))
            buf, inside = [line], False
        else:
            buf.append(line)
    if inside:
        raise BlockError(f"{START} without {END}")
    segments.append(Segment("".join(buf), False))
    return segments


def _evolvable(text: str) -> Segment:
    dedented = textwrap.dedent(text)
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    indent = first[: len(first) - len(first.lstrip())] if dedented != text else ""
    return Segment(dedented, True, indent)


def join_blocks(segments: list[Segment]) -> str:
    out = []
    for s in segments:
        if s.evolvable and s.indent:
            out.append(textwrap.indent(s.text, s.indent))
        else:
            out.append(s.text)
    return "".join(out)


def block_bodies(code: str) -> list[str]:
    return [s.text for s in split_blocks(code) if s.evolvable]


def replace_block_bodies(code: str, bodies: list[str]) -> str:
    """Return ``code`` with its evolvable segments replaced by ``bodies`` (same count)."""
    segments = split_blocks(code)
    evolvable = [s for s in segments if s.evolvable]
    if len(bodies) != len(evolvable):
        raise BlockError(f"expected {len(evolvable)} block bodies, got {len(bodies)}")
    for seg, body in zip(evolvable, bodies, strict=True):
        seg.text = body if body.endswith("\n") or not body else body + "\n"
    return join_blocks(segments)


class _StripDocstrings(ast.NodeTransformer):
    def _strip(self, node: ast.AST) -> ast.AST:
        self.generic_visit(node)
        body = getattr(node, "body", None)
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
        return node

    visit_Module = visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _strip


def normalize(code: str) -> str:
    """Code without comments, docstrings or formatting: equal for programs that only differ there."""
    tree = _StripDocstrings().visit(ast.parse(code))
    return ast.unparse(tree)


def code_hash(code: str) -> str:
    try:
        text = normalize(code)
    except SyntaxError:
        text = code
    return hashlib.sha256(text.encode()).hexdigest()[:32]
