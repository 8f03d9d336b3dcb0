"""Static rules checked before a candidate runs: a cheap first wall, not the sandbox itself.

A violation rejects the child with the rule that fired, recorded in the archive.
"""

from __future__ import annotations

import ast

from evolve.problem import CodeRules

BANNED_CALLS = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "open",
        "__import__",
        "globals",
        "locals",
        "vars",
        "breakpoint",
        "input",
        "memoryview",
        "setattr",
        "delattr",
    }
)


class StaticRuleViolation(Exception):
    def __init__(self, rule: str, line: int | None, detail: str) -> None:
        self.rule, self.line, self.detail = rule, line, detail
        super().__init__(f"{rule} (line {line}): {detail}" if line else f"{rule}: {detail}")


def check_program(code: str, allowed_imports: frozenset[str], rules: CodeRules | None = None) -> None:
    """Raise SyntaxError or :class:`StaticRuleViolation` for a program that must not run."""
    tree = ast.parse(code)
    rules = rules or CodeRules()
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    modules = _module_names(tree)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", None)
        if isinstance(node, ast.Attribute):
            if node.attr.startswith("__") and node.attr.endswith("__"):
                raise StaticRuleViolation("dunder_access", line, f"attribute {node.attr!r}")
            _check_attribute(node, rules, line)
            if not rules.private_module_attributes and node.attr.startswith("_") and _root_name(node) in modules:
                raise StaticRuleViolation(
                    "private_attribute", line, f"private attribute {node.attr!r} of module {_root_name(node)!r}"
                )
        if isinstance(node, ast.Import):
            for alias in node.names:
                _check_module(alias.name, allowed_imports, line)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise StaticRuleViolation("import", line, "relative imports are not allowed")
            _check_module(node.module or "", allowed_imports, line)
        elif isinstance(node, ast.Name) and node.id in BANNED_CALLS:
            raise StaticRuleViolation("banned_name", line, f"{node.id!r} is not allowed")
        elif (
            isinstance(node, ast.Name)
            and node.id.startswith("__")
            and node.id.endswith("__")
            and node.id not in {"__name__"}
        ):
            raise StaticRuleViolation("dunder_access", line, f"name {node.id!r}")
        elif isinstance(node, ast.Name) and node.id == "getattr" and id(node) not in called:
            raise StaticRuleViolation("computed_getattr", line, "getattr may only be called directly")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr":
            if (
                len(node.args) < 2
                or not isinstance(node.args[1], ast.Constant)
                or not isinstance(node.args[1].value, str)
                or node.args[1].value.startswith("_")
            ):
                raise StaticRuleViolation("computed_getattr", line, "getattr needs a constant public name")
            _check_attribute(ast.Attribute(value=node.args[0], attr=node.args[1].value, ctx=ast.Load()), rules, line)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            raise StaticRuleViolation("global_statement", line, "global/nonlocal are not allowed")
        elif isinstance(node, ast.ClassDef) and not rules.classes:
            raise StaticRuleViolation(
                "class_definition",
                line,
                f"class {node.name!r}: this problem allows no classes "
                "(a subclass of a library type sees what is done with its objects later)",
            )
        elif isinstance(node, ast.Name) and node.id in rules.banned_names:
            raise StaticRuleViolation("banned_name", line, f"{node.id!r} is not allowed in this problem")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "type"
            and len(node.args) + len(node.keywords) >= 3
        ):
            raise StaticRuleViolation("banned_name", line, "type() with three arguments makes a class")


def _module_names(tree: ast.AST) -> set[str]:
    """The names a program binds to imported modules (``import numpy as np`` -> np)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names |= {a.asname or a.name for a in node.names}  # may be submodules
    return names


def _root_name(node: ast.Attribute) -> str | None:
    value: ast.expr = node
    while isinstance(value, ast.Attribute):
        value = value.value
    return value.id if isinstance(value, ast.Name) else None


def _check_attribute(node: ast.Attribute, rules: CodeRules, line: int | None) -> None:
    if node.attr in rules.banned_attributes:
        raise StaticRuleViolation("banned_attribute", line, f"attribute {node.attr!r} is not allowed in this problem")
    if not rules.private_attributes and node.attr.startswith("_"):  # __mangled names too
        raise StaticRuleViolation("private_attribute", line, f"private attribute {node.attr!r}")
    if not rules.attribute_assignment and isinstance(node.ctx, (ast.Store, ast.Del)):
        raise StaticRuleViolation(
            "attribute_assignment",
            line,
            f"assigning to attribute {node.attr!r} (patching a library) is not allowed in this problem",
        )


def _check_module(name: str, allowed: frozenset[str], line: int | None) -> None:
    root = name.split(".")[0]
    if root not in allowed:
        raise StaticRuleViolation(
            "import",
            line,
            f"module {name!r} is not allowed (problem.allowed_imports "
            f"adds it; the seed's own imports are always allowed)",
        )


def imports_of(code: str) -> frozenset[str]:
    """The top-level modules a program imports (what its children may always import too)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return frozenset()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return frozenset(names)
