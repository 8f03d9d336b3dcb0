"""Prompt templates (plain files in prompts/, overridable per run) and the text that fills them.

A template is Markdown with ``{{name}}`` placeholders. A user folder (``llm.prompts_dir``) may
override any template by file name. Everything that goes into a prompt from a candidate's run
(output, errors) is truncated and has secrets redacted first (evolve.secrets).
"""

from __future__ import annotations

import importlib.resources
import json
import re
from pathlib import Path
from typing import Any

from evolve.errors import UserError
from evolve.program import Program
from evolve.secrets import redact

# The templates ship as package data of the `prompts` package (found the same way in a source
# checkout and in an installed wheel).
PROMPTS_DIR = Path(str(importlib.resources.files("prompts")))
TEMPLATES = ("system", "diff", "rewrite", "crossover", "repair", "insights")
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class PromptError(UserError, ValueError):
    """A template is missing or uses an unknown placeholder; the message names the file."""


class PromptLibrary:
    def __init__(self, override_dir: str | None = None) -> None:
        self.templates: dict[str, tuple[Path, str]] = {}
        for name in TEMPLATES:
            path = PROMPTS_DIR / f"{name}.md"
            if override_dir and (Path(override_dir) / f"{name}.md").is_file():
                path = Path(override_dir) / f"{name}.md"
            if not path.is_file():
                raise PromptError(f"{path}: prompt template missing")
            self.templates[name] = (path, path.read_text())
        if override_dir and not Path(override_dir).is_dir():
            raise PromptError(f"llm.prompts_dir: {override_dir} is not a folder")

    def render(self, name: str, values: dict[str, str]) -> str:
        path, text = self.templates[name]

        def fill(m: re.Match[str]) -> str:
            if m.group(1) not in values:
                raise PromptError(
                    f"{path}: unknown placeholder {{{{{m.group(1)}}}}} (known here: {', '.join(sorted(values))})"
                )
            return values[m.group(1)]

        return _PLACEHOLDER.sub(fill, text).strip() + "\n"


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = max(limit // 2, 1)
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters cut ...]\n{text[-half:]}"


def metrics_summary(metrics: dict[str, Any], limit: int = 600) -> str:
    """Scalar metrics (and dicts of scalars one level down), curves left out."""
    parts = []
    for key, value in metrics.items():
        if isinstance(value, (int, float, str, bool)) or value is None:
            parts.append(f"{key}={_fmt(value)}")
        elif isinstance(value, dict) and value and all(isinstance(v, (int, float, str, bool)) for v in value.values()):
            parts.append(f"{key}={{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}")
    return truncate("; ".join(parts), limit) or "(none)"


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else json.dumps(v) if isinstance(v, str) else str(v)


def fitness_text(p: Program) -> str:
    if p.fitness is not None:
        return f"{p.fitness:.4f}"
    return f"none ({p.status}{': ' + str(p.failure_kind) if p.failure_kind else ''})"


def what_changed(p: Program) -> str:
    info = p.operator_info
    if "summary" in info and info["summary"]:
        return str(info["summary"])
    if "edits" in info:
        return "; ".join(str(e) for e in info["edits"])[:200]
    if "crossover" in info:
        return f"crossover: {info['crossover']}"[:200]
    return p.operator


def artifacts_of(p: Program) -> dict[str, str]:
    """What a program's evaluator fed back as text (OpenEvolve artifacts, ShinkaEvolve text feedback)."""
    out: dict[str, str] = {}
    for stage in p.metrics.values():
        if isinstance(stage, dict) and isinstance(stage.get("artifacts"), dict):
            out.update({str(k): str(v) for k, v in stage["artifacts"].items()})
    return out


def program_section(title: str, p: Program, feedback_chars: int, secrets: list[str]) -> str:
    metrics = {
        k: {a: b for a, b in v.items() if a != "artifacts"} if isinstance(v, dict) else v for k, v in p.metrics.items()
    }
    out = [
        f"# {title} (program {p.id}, fitness {fitness_text(p)})",
        f"Metrics: {metrics_summary(metrics)}",
        "```python",
        p.code.rstrip("\n"),
        "```",
    ]
    feedback = (p.reason or "") + ("\n" + p.output if p.output else "")
    if feedback.strip() and feedback_chars:
        out += ["Its last run said:", "```", redact(truncate(feedback.strip(), feedback_chars), secrets), "```"]
    artifacts = artifacts_of(p)
    if artifacts and feedback_chars:
        out.append("Its evaluator reported:")
        for key, text in artifacts.items():
            out += [f"## {key}", "```", redact(truncate(text.strip(), feedback_chars), secrets), "```"]
    return "\n".join(out) + "\n"


def history_section(parent: Program, ancestors: list[Program]) -> str:
    """What the recent steps of this lineage changed and what that did to fitness."""
    if not ancestors:
        return ""
    chain = [*reversed(ancestors), parent]
    lines = ["# How this program came about (oldest first)"]
    for before, after in zip(chain, chain[1:]):
        delta = ""
        if before.fitness is not None and after.fitness is not None:
            delta = f" ({after.fitness - before.fitness:+.4f})"
        lines.append(
            f"- program {after.id} from {before.id} by {after.operator}: fitness "
            f"{fitness_text(before)} -> {fitness_text(after)}{delta}; {what_changed(after)}"
        )
    return "\n".join(lines) + "\n\n"


def tried_section(parent: Program, children: list[Program]) -> str:
    if not children:
        return ""
    lines = ["# Already tried on this program (do not repeat these)"]
    for c in reversed(children):
        delta = ""
        if c.fitness is not None and parent.fitness is not None:
            delta = f" ({c.fitness - parent.fitness:+.4f})"
        why = f" [{' '.join((c.reason or '').split())[:120]}]" if c.fitness is None and c.reason else ""
        lines.append(f"- {c.operator}: fitness {fitness_text(c)}{delta}{why}; {what_changed(c)}")
    return "\n".join(lines) + "\n\n"


def inspirations_section(programs: list[Program]) -> str:
    if not programs:
        return ""
    out = ["# Other good programs of this search, for ideas (do not copy blindly)"]
    for p in programs:
        out += [f"## program {p.id}, fitness {fitness_text(p)}", "```python", p.code.rstrip("\n"), "```"]
    return "\n".join(out) + "\n\n"


def insights_section(note: str | None) -> str:
    return f"# Notes from earlier in this search\n{note.strip()}\n\n" if note else ""
