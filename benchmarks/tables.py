"""Write a generated markdown table into README.md / benchmarks/RESULTS.md between its markers
(``<!-- name:start -->`` ... ``<!-- name:end -->``), so the published numbers come from a script,
never from a hand edit."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def markdown(headers: list[str], rows: list[list[str]], align: str = "") -> str:
    align = align or "l" + "r" * (len(headers) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def publish(name: str, text: str, files: tuple[str, ...] = ("README.md", "benchmarks/RESULTS.md")) -> None:
    # The section may be empty (a new marker pair): the text between the markers is optional.
    pattern = re.compile(rf"(<!-- {name}:start -->\n)(?:.*?\n)?(<!-- {name}:end -->)", re.S)
    for rel in files:
        path = ROOT / rel
        doc = path.read_text()
        if pattern.search(doc):
            path.write_text(pattern.sub(lambda m: m.group(1) + text.rstrip("\n") + "\n" + m.group(2), doc))


def published_rows(name: str, rel: str = "benchmarks/RESULTS.md") -> list[list[str]]:
    """The body rows of the table published in a section (none when the section is empty): a script that
    re-measures some rows keeps the others."""
    doc = (ROOT / rel).read_text()
    found = re.search(rf"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", doc, re.S)
    lines = [line for line in (found.group(1) if found else "").splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"
