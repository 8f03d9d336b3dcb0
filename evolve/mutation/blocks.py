"""EVOLVE-BLOCK regions: the only text operators may change.

Operators may change only the text between ``# EVOLVE-BLOCK-START`` and ``# EVOLVE-BLOCK-END``;
everything outside is kept byte for byte. A program without markers is one whole block.
"""

from __future__ import annotations

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


def _is_marker(line: str, marker: str) -> bool:
    stripped = line.strip()
    return stripped.startswith("#") and marker in stripped


def scan_lines(lines: list[str]) -> list[int]:
    """For each line, the index of the EVOLVE-BLOCK region it lies in, or -1 for a line outside
    every region and for the marker lines themselves. Code without markers is one region (0).

    The one parser of the markers: raises :class:`BlockError` for nested or unbalanced ones.
    """
    if not any(_is_marker(ln, START) for ln in lines):
        return [0] * len(lines)
    regions, region, inside = [], -1, False
    for n, line in enumerate(lines, 1):
        if _is_marker(line, START):
            if inside:
                raise BlockError(f"line {n}: nested {START}")
            region, inside = region + 1, True
            regions.append(-1)
        elif _is_marker(line, END):
            if not inside:
                raise BlockError(f"line {n}: {END} without {START}")
            inside = False
            regions.append(-1)
        else:
            regions.append(region if inside else -1)
    if inside:
        raise BlockError(f"{START} without {END}")
    return regions


def split_blocks(code: str) -> list[Segment]:
    """Split code into alternating fixed and evolvable segments (marker lines stay fixed)."""
    lines = code.splitlines(keepends=True)
    scan_lines(lines)  # validates the markers
    if not any(_is_marker(ln, START) for ln in lines):
        return [Segment(code, True)]
    segments: list[Segment] = []
    buf: list[str] = []
    for line in lines:
        if _is_marker(line, START):
            buf.append(line)
            segments.append(Segment("".join(buf), False))
            buf = []
        elif _is_marker(line, END):
            segments.append(_evolvable("".join(buf)))
            buf = [line]
        else:
            buf.append(line)
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
