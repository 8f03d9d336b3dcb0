"""The architecture's rules, checked on the source: no import cycle between the project's modules (an
import inside a function counts: it is still a cycle), the layers import downwards only, and the CLI's
read commands start without the engine."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import REPO

PACKAGES = ("evolve", "evaluators", "islands", "problems")
ENGINE = (
    "evolve.controller",
    "evolve.proposer",
    "evolve.recorder",
    "evolve.rescore",
    "evolve.runner",
    "evaluators",
    "islands",
)
# The read side reads through evolve.archive (ArchiveReader): it cannot write, and cannot take the writer.
READ_SIDE_MAY_NOT = (
    *ENGINE,
    "evolve.cli",
    "evolve.llm",
    "evolve.mutation",
    "evolve.operators",
    "evolve.store",
    "problems",
)
# What the read side may take from a layer it otherwise may not: the model selector is a pure function of
# the archive's LLM outcomes (the report shows the model preferences a run has learnt).
READ_SIDE_MAY = ("evolve.llm.selector",)
ABOVE_THE_STORE = (
    "evolve.controller",
    "evolve.proposer",
    "evolve.recorder",
    "evolve.runner",
    "evolve.cli",
    "evolve.llm",
    "evolve.mutation",
    "islands",
    "evaluators",
)
# Each layer below the CLI: what it may not import (anything that sits above it).
UPWARD = {
    # the reader sits below the writer, and needs no config (a read command pays for no pydantic model)
    "evolve.archive": (*ABOVE_THE_STORE, "evolve.store", "evolve.config"),
    "evolve.store": ABOVE_THE_STORE,
    "evolve.program": ("evolve.archive", "evolve.store", "evolve.config", "evolve.controller", "evaluators", "islands"),
    "evolve.problem": ("evolve.loader", "evolve.store", "evolve.controller", "evaluators", "islands", "problems"),
    "evolve.config": ("evolve.store", "evolve.controller", "evolve.problem", "evaluators", "islands"),
    "evolve.schema": tuple(PACKAGES),
    "evolve.jsonsafe": tuple(PACKAGES),
    "evolve.errors": tuple(PACKAGES),
    "evolve.hashing": tuple(PACKAGES),
    "islands": ("evolve.controller", "evolve.proposer", "evolve.recorder", "evolve.runner", "evaluators"),
    "evaluators": ("evolve.controller", "evolve.proposer", "evolve.recorder", "evolve.runner", "evolve.cli", "islands"),
    "evolve.mutation": (
        "evolve.controller",
        "evolve.proposer",
        "evolve.recorder",
        "evolve.runner",
        "evolve.cli",
        "evolve.store",
        "evolve.llm",
        "evolve.operators",
        "evolve.ui",
        "evaluators",
        "islands",
    ),
    "evolve.llm": (
        "evolve.controller",
        "evolve.proposer",
        "evolve.recorder",
        "evolve.runner",
        "evolve.cli",
        "evolve.operators",
        "evolve.ui",
        "evaluators",
        "islands",
    ),
    "evolve.operators": ("evolve.controller", "evolve.proposer", "evolve.recorder", "evolve.runner", "evolve.cli"),
    # the web view and the report read the archive: nothing of the engine, the operators or the evaluators
    "evolve.ui": READ_SIDE_MAY_NOT,
    "evolve.report": READ_SIDE_MAY_NOT,
    "evolve.secrets": tuple(PACKAGES),
    # how a problem folder becomes a Problem (the peer layouts included): below everything that runs one
    "evolve.loader": ENGINE + ("evolve.cli", "evolve.llm", "evolve.mutation", "evolve.operators", "evolve.ui"),
    "evolve.compat": ENGINE
    + ("evolve.cli", "evolve.llm", "evolve.mutation", "evolve.operators", "evolve.ui", "evolve.store"),
    "problems": ("evolve.controller", "evolve.proposer", "evolve.recorder", "evolve.runner", "evolve.cli", "evolve.ui"),
}
# Every package and top-level module of evolve sits in a layer above: a new one must be placed.
PLACED_ABOVE_THE_RULES = (
    "evolve.cli",
    "evolve.progress",  # what a run shows while it goes (the CLI's)
    "evolve.rescore",
    "evolve.runner",
    "evolve.controller",
    "evolve.proposer",
    "evolve.recorder",
)


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            if "shims" in path.parts or "static" in path.parts:
                continue
            parts = path.relative_to(REPO).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {
        name: {t for t in _imports(path, name, known) if not name.startswith(t + ".")} for name, path in modules.items()
    }


def test_no_import_cycles_even_through_function_level_imports() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt) :] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_layers_import_downwards_only() -> None:
    for name, targets in _graph().items():
        for lower, forbidden in UPWARD.items():
            if name == lower or name.startswith(lower + "."):
                allowed = READ_SIDE_MAY if forbidden is READ_SIDE_MAY_NOT else ()
                bad = [
                    t for t in targets if any(t == f or t.startswith(f + ".") for f in forbidden) and t not in allowed
                ]
                assert not bad, f"{name} imports {bad} (it may only import below itself)"


def test_every_evolve_module_has_a_layer() -> None:
    top = {".".join(name.split(".")[:2]) for name in _modules() if name.startswith("evolve.")}
    unplaced = sorted(top - set(UPWARD) - set(PLACED_ABOVE_THE_RULES))
    assert not unplaced, f"modules with no layering rule in tests/test_architecture.py: {unplaced}"


def test_read_commands_start_without_the_engine() -> None:
    code = (
        "import sys, evolve.cli, evolve.report; "
        "heavy = sorted(m for m in ('torch', 'numpy', 'ribs', 'ray', 'litellm', 'evolve.controller') "
        "if m in sys.modules); print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]", out.stdout
