"""Turning an LLM reply into a child: SEARCH/REPLACE diffs and whole-block rewrites.

Diffs are strict on content: a SEARCH text must match exactly one place inside the EVOLVE-BLOCK
regions, line for line. The only noise forgiven is formatting that carries no code: code fences
around the blocks, CRLF line ends and trailing whitespace. Any block that cannot be applied
rejects the whole child with the reason; nothing is skipped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from evolve.mutation.blocks import START, BlockError, block_bodies, replace_block_bodies, scan_lines, split_blocks

_SEARCH = re.compile(r"^\s*<{5,}\s*SEARCH\s*$")
_DIVIDER = re.compile(r"^\s*={5,}\s*$")
_REPLACE = re.compile(r"^\s*>{5,}\s*REPLACE\s*$")
_FENCE = re.compile(r"^\s*```")
_CODE_BLOCK = re.compile(r"^```[\w+-]*[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


class DiffError(ValueError):
    """The reply cannot be applied; the message is the child's rejection reason."""


@dataclass(frozen=True)
class Edit:
    search: list[str]
    replace: list[str]


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def parse_diff(reply: str) -> list[Edit]:
    """The SEARCH/REPLACE blocks of a reply, in order."""
    edits: list[Edit] = []
    state, search, replace = "out", list[str](), list[str]()
    for line in _lines(reply):
        if state == "out":
            if _SEARCH.match(line):
                state, search, replace = "search", [], []
        elif _FENCE.match(line):
            continue  # a fence inside a block is formatting, never code
        elif state == "search":
            if _DIVIDER.match(line):
                state = "replace"
            elif _SEARCH.match(line) or _REPLACE.match(line):
                raise DiffError(f"diff block {len(edits) + 1}: SEARCH part not closed by =======")
            else:
                search.append(line.rstrip())
        elif _REPLACE.match(line):
            edits.append(Edit(search, [ln.rstrip() for ln in replace]))
            state = "out"
        elif _SEARCH.match(line) or _DIVIDER.match(line):
            raise DiffError(f"diff block {len(edits) + 1}: REPLACE part not closed by >>>>>>> REPLACE")
        else:
            replace.append(line)
    if state != "out":
        raise DiffError(f"diff block {len(edits) + 1}: not closed by >>>>>>> REPLACE")
    if not edits:
        raise DiffError("no SEARCH/REPLACE block in the reply")
    return edits


def apply_diff(code: str, edits: list[Edit]) -> str:
    """Apply ``edits`` in order; each must match exactly once inside the EVOLVE-BLOCK regions."""
    split_blocks(code)  # the parent must have well-formed regions
    lines = code.split("\n")
    for n, edit in enumerate(edits, 1):
        search = edit.search
        while search and not search[-1]:
            search = search[:-1]  # a trailing blank line in SEARCH is formatting
        if not any(s.strip() for s in search):
            raise DiffError(f"diff block {n}: empty SEARCH text")
        mask = scan_lines(lines)
        stripped = [ln.rstrip() for ln in lines]
        k = len(search)
        starts = [i for i in range(len(lines) - k + 1) if stripped[i : i + k] == search]
        inside = [i for i in starts if mask[i] >= 0 and len(set(mask[i : i + k])) == 1]
        first = next(s for s in search if s.strip()).strip()
        if not inside:
            where = "touches code outside the EVOLVE-BLOCK regions" if starts else "does not match the program"
            raise DiffError(f"diff block {n}: SEARCH text {where} (first line: {first[:80]!r})")
        if len(inside) > 1:
            raise DiffError(f"diff block {n}: SEARCH text matches {len(inside)} places (first line: {first[:80]!r})")
        i = inside[0]
        lines[i : i + k] = edit.replace
    child = "\n".join(lines)
    _check_outside_kept(code, child)
    return child


def _check_outside_kept(parent: str, child: str) -> None:
    try:
        before = [s.text for s in split_blocks(parent) if not s.evolvable]
        after = [s.text for s in split_blocks(child) if not s.evolvable]
    except BlockError as exc:
        raise DiffError(f"the edit breaks the EVOLVE-BLOCK markers: {exc}") from None
    if before != after:
        raise DiffError("the edit changes code outside the EVOLVE-BLOCK regions")


def code_blocks(reply: str) -> list[str]:
    """The fenced code blocks of a reply, in order."""
    return [m.group(1) for m in _CODE_BLOCK.finditer(reply.replace("\r\n", "\n"))]


def apply_rewrite(code: str, reply: str) -> str:
    """Replace the EVOLVE-BLOCK bodies with the reply's code; everything outside stays byte for byte.

    The reply holds one fenced block per region, in order. A reply that returns the whole program
    (markers included) is accepted too: its region bodies are taken, its outside ignored.
    """
    blocks = code_blocks(reply)
    if not blocks:
        raise DiffError("no fenced code block in the reply")
    regions = len(block_bodies(code))
    marked = [b for b in blocks if START in b]
    if marked:
        try:
            bodies = block_bodies(marked[-1])
        except BlockError as exc:
            raise DiffError(f"the returned program has broken EVOLVE-BLOCK markers: {exc}") from None
    else:
        bodies = blocks[-regions:] if len(blocks) >= regions else blocks
    if len(bodies) != regions:
        raise DiffError(f"the reply has {len(bodies)} code block(s) for {regions} EVOLVE-BLOCK region(s)")
    if not any(b.strip() for b in bodies):
        raise DiffError("the reply's code is empty")
    bodies = [b.replace("\r\n", "\n") for b in bodies]
    child = replace_block_bodies(code, [b.rstrip() + "\n" for b in bodies])
    _check_outside_kept(code, child)
    return child


def explanation(reply: str, max_chars: int = 300) -> str:
    """The reply's prose before its first block: what the model says it changed (for lineage)."""
    text = reply.replace("\r\n", "\n")
    cut = min([m.start() for m in (_CODE_BLOCK.search(text), re.search(r"<{5,}\s*SEARCH", text)) if m] or [len(text)])
    prose = " ".join(text[:cut].split())
    return prose[:max_chars]
