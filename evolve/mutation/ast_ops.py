"""Genetic operators on Python ASTs, confined to EVOLVE-BLOCK regions.

Each edit works on the parsed block bodies and writes them back with ``ast.unparse``, so the
result always parses; code outside the blocks is untouched byte for byte.
"""

from __future__ import annotations

import ast
import copy
import math
from collections.abc import Callable
from typing import TypeVar, cast

import numpy as np

from evolve.mutation.blocks import block_bodies, replace_block_bodies
from evolve.problem import Primitives

_BINOPS: dict[str, type[ast.operator]] = {
    "+": ast.Add,
    "-": ast.Sub,
    "*": ast.Mult,
    "/": ast.Div,
    "**": ast.Pow,
    "//": ast.FloorDiv,
    "%": ast.Mod,
}
_BINOP_NAMES = {v: k for k, v in _BINOPS.items()}


class EditFailed(Exception):
    """This edit found nothing to act on; the operator tries another."""


def _parse_blocks(code: str) -> list[ast.Module]:
    return [ast.parse(b) for b in block_bodies(code)]


def _unparse_blocks(code: str, trees: list[ast.Module]) -> str:
    return replace_block_bodies(code, [ast.unparse(ast.fix_missing_locations(t)) + "\n" for t in trees])


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _name_expr(dotted: str) -> ast.expr:
    parts = dotted.split(".")
    node: ast.expr = ast.Name(parts[0], ast.Load())
    for part in parts[1:]:
        node = ast.Attribute(node, part, ast.Load())
    return node


_Node = TypeVar("_Node", bound=ast.AST)


def _nodes(trees: list[ast.Module], kind: type[_Node]) -> list[_Node]:
    return [n for t in trees for n in ast.walk(t) if isinstance(n, kind)]


def _bodies(trees: list[ast.Module]) -> list[list[ast.stmt]]:
    """Every statement list (module, function, loop, if bodies...) inside the blocks."""
    out = []
    for t in trees:
        for n in ast.walk(t):
            for attr in ("body", "orelse", "finalbody"):
                body = getattr(n, attr, None)
                if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                    out.append(body)
    return out


def _value_exprs(trees: list[ast.Module]) -> list[tuple[ast.AST, str, int | None]]:
    """(parent, field, index) slots holding a loaded expression that may be replaced."""
    slots: list[tuple[ast.AST, str, int | None]] = []
    for t in trees:
        for parent in ast.walk(t):
            if isinstance(parent, (ast.FunctionDef, ast.arguments, ast.keyword)):
                continue
            for fld, value in ast.iter_fields(parent):
                if fld in {"func", "target", "targets", "decorator_list", "annotation", "returns"}:
                    continue
                if fld == "value" and isinstance(parent, (ast.Attribute, ast.Subscript)):
                    continue  # `torch` in torch.sqrt, `state` in state["m"]: replacing them is never valid
                if isinstance(value, ast.expr) and _replaceable(value):
                    slots.append((parent, fld, None))
                elif isinstance(value, list):
                    slots.extend(
                        (parent, fld, i) for i, v in enumerate(value) if isinstance(v, ast.expr) and _replaceable(v)
                    )
    return slots


def _replaceable(e: ast.expr) -> bool:
    if isinstance(e, ast.Name):
        return isinstance(e.ctx, ast.Load)
    if isinstance(e, ast.Constant):
        return isinstance(e.value, (int, float)) and not isinstance(e.value, bool)
    return isinstance(e, (ast.BinOp, ast.UnaryOp, ast.Call))


def _get(slot: tuple[ast.AST, str, int | None]) -> ast.expr:
    parent, fld, idx = slot
    v = getattr(parent, fld)
    return cast(ast.expr, v[idx] if idx is not None else v)


def _set(slot: tuple[ast.AST, str, int | None], new: ast.expr) -> None:
    parent, fld, idx = slot
    if idx is None:
        setattr(parent, fld, new)
    else:
        getattr(parent, fld)[idx] = new


def _enclosing_function(trees: list[ast.Module], line: int | None) -> ast.AST | None:
    if line is None:
        return None
    funcs = [
        f
        for f in _nodes(trees, ast.FunctionDef) + _nodes(trees, ast.AsyncFunctionDef)
        if f.lineno <= line <= (f.end_lineno or f.lineno)
    ]
    return max(funcs, key=lambda f: f.lineno, default=None)  # the innermost


def _in_scope_names(trees: list[ast.Module], at: ast.AST | None = None) -> list[str]:
    """Names bound before ``at`` in its function: arguments, and assignments on earlier lines.

    Comprehension variables are left out (they exist only inside their comprehension), and so
    are names first bound at or after ``at``'s line, which would be read before assignment, and
    names local to other functions.
    """
    line = getattr(at, "lineno", None) if at is not None else None
    scope = _enclosing_function(trees, line)
    scope_trees: list[ast.AST] = [scope] if scope is not None else list(trees)
    names = {a.arg for t in scope_trees for a in ast.walk(t) if isinstance(a, ast.arg)}
    comp_targets = {
        n.id
        for t in scope_trees
        for c in ast.walk(t)
        if isinstance(c, ast.comprehension)
        for n in ast.walk(c.target)
        if isinstance(n, ast.Name)
    }
    for t in scope_trees:
        for n in ast.walk(t):
            if (
                isinstance(n, ast.Name)
                and isinstance(n.ctx, ast.Store)
                and n.id not in comp_targets
                and (line is None or getattr(n, "lineno", line) < line)
            ):
                names.add(n.id)
    return sorted(names - {"self"})


class Mutator:
    """Applies random AST edits drawn from a problem's primitive set."""

    def __init__(self, primitives: Primitives) -> None:
        self.p = primitives
        self.edits: list[tuple[str, Callable[[list[ast.Module], np.random.Generator], None]]] = [
            ("perturb_constant", self.perturb_constant),
            ("swap_binop", self.swap_binop),
            ("swap_call", self.swap_call),
            ("replace_subexpression", self.replace_subexpression),
            ("wrap_subexpression", self.wrap_subexpression),
            ("duplicate_statement", self.duplicate_statement),
            ("delete_statement", self.delete_statement),
            ("toggle_negation", self.toggle_negation),
            ("apply_template", self.apply_template),
            ("add_state", self.add_state),
        ]
        self.weights = np.array(
            [4, 2, 2, 2, 2, 1, 1, 1, 4 if primitives.templates else 0, 2 if primitives.state else 0], dtype=np.float64
        )

    # -- individual edits ---------------------------------------------------------------------
    def perturb_constant(self, trees: list[ast.Module], rng: np.random.Generator) -> None:
        consts = [
            c
            for c in _nodes(trees, ast.Constant)
            if isinstance(c.value, (int, float)) and not isinstance(c.value, bool)
        ]
        if not consts:
            raise EditFailed("no numeric constant")
        c = consts[int(rng.integers(len(consts)))]
        v = c.value
        assert isinstance(v, (int, float))  # filtered above
        if isinstance(v, int) and abs(v) < 16:
            c.value = int(v + rng.choice([-1, 1]))
        elif v == 0:
            c.value = float(rng.choice(self.p.constants)) if self.p.constants else 1e-3
        else:
            # log-normal step keeps sign and explores orders of magnitude for rates and epsilons
            scaled = float(v) * math.exp(float(rng.normal(0.0, 0.7)))
            c.value = int(round(scaled)) if isinstance(v, int) else float(f"{scaled:.4g}")

    def swap_binop(self, trees: list[ast.Module], rng: np.random.Generator) -> None:
        ops = [n for n in _nodes(trees, ast.BinOp) if _BINOP_NAMES.get(type(n.op), "") in self.p.binary_ops]
        if not ops or len(self.p.binary_ops) < 2:
            raise EditFailed("no swappable binary op")
        node = ops[int(rng.integers(len(ops)))]
        current = _BINOP_NAMES[type(node.op)]
        choices = [o for o in self.p.binary_ops if o != current and o in _BINOPS]
        node.op = _BINOPS[choices[int(rng.integers(len(choices)))]]()

    def toggle_negation(self, trees: list[ast.Module], rng: np.random.Generator) -> None:
        """Drop a unary minus, or negate an expression."""
        slots = _value_exprs(trees)
        negs = [(s, e) for s in slots if isinstance(e := _get(s), ast.UnaryOp) and isinstance(e.op, ast.USub)]
        if negs and rng.random() < 0.5:
            slot, neg = negs[int(rng.integers(len(negs)))]
            _set(slot, neg.operand)
        elif slots:
            slot = slots[int(rng.integers(len(slots)))]
            _set(slot, ast.UnaryOp(ast.USub(), _get(slot)))
        else:
            raise EditFailed("no expression")

    def swap_call(self, trees: list[ast.Module], rng: np.random.Generator) -> None:
        calls = [c for c in _nodes(trees, ast.Call) if (_dotted(c.func) or "") in self.p.calls]
        if not calls or len(self.p.calls) < 2:
            raise EditFailed("no swappable call")
        node = calls[int(rng.integers(len(calls)))]
        choices = [c for c in self.p.calls if c != _dotted(node.func)]
        node.func = _name_expr(choices[int(rng.integers(len(choices)))])

    def _random_leaf(self, names: list[str], rng: np.random.Generator) -> ast.expr:
        if names and (not self.p.constants or rng.random() < 0.6):
            return ast.Name(names[int(rng.integers(len(names)))], ast.Load())
        return ast.Constant(float(rng.choice(self.p.constants)))

    def _random_expr(self, names: list[str], rng: np.random.Generator, depth: int) -> ast.expr:
        r = rng.random()
        if depth <= 0 or r < 0.3:
            return self._random_leaf(names, rng)
        if r < 0.6 and self.p.calls and names:
            arg = self._random_expr(names, rng, depth - 1)
            if isinstance(arg, ast.Constant):
                arg = ast.Name(names[int(rng.integers(len(names)))], ast.Load())
            return ast.Call(_name_expr(str(rng.choice(self.p.calls))), [arg], [])
        op = str(rng.choice([o for o in self.p.binary_ops if o in _BINOPS]))
        return ast.BinOp(
            self._random_expr(names, rng, depth - 1), _BINOPS[op](), self._random_expr(names, rng, depth - 1)
        )

    def replace_subexpression(self, trees: list[ast.Module], rng: np.random.Generator) -> None:
        slots = _value_exprs(trees)
        if not slots:
            raise EditFailed("no expression")
        slot = slots[int(rng.integers(len(slots)))]
        _set(slot, self._random_expr(_in_scope_names(trees, _get(slot)), rng, depth=2))

    def wrap_subexpression(self, trees: list[ast.Module], rng: np.random.Generator) -> None:
        """e -> call(e) or e <op> new: grows structure around what already works."""
        slots = _value_exprs(trees)
        if not slots:
            raise EditFailed("no expression")
        slot = slots[int(rng.integers(len(slots)))]
        old = _get(slot)
        if self.p.calls and not isinstance(old, ast.Constant) and rng.random() < 0.4:
            _set(slot, ast.Call(_name_expr(str(rng.choice(self.p.calls))), [old], []))
        else:
            op = str(rng.choice([o for o in self.p.binary_ops if o in _BINOPS]))
            other = self._random_expr(_in_scope_names(trees, old), rng, depth=1)
            _set(
                slot,
                ast.BinOp(old, _BINOPS[op](), other) if rng.random() < 0.7 else ast.BinOp(other, _BINOPS[op](), old),
            )

    def apply_template(self, trees: list[ast.Module], rng: np.random.Generator) -> None:
        """e -> one of the problem's templates around e, e.g. e / (abs(n) + c): its domain's idioms."""
        slots = _value_exprs(trees)
        if not slots or not self.p.templates:
            raise EditFailed("no expression or no template")
        slot = slots[int(rng.integers(len(slots)))]
        old = _get(slot)
        _set(slot, self._render(str(rng.choice(self.p.templates)), {"x": old}, _in_scope_names(trees, old), rng))

    def _render(
        self, template: str, holes: dict[str, ast.expr], names: list[str], rng: np.random.Generator
    ) -> ast.expr:
        """A template as an expression: each "{hole}" replaced by a copy of its expression, "{n}" by a name in
        scope, "{c}" by a constant and "{d}" by a decay (each drawn once: the same wherever it recurs)."""
        if "{n}" in template and not names:
            raise EditFailed("no name in scope")
        text = template
        for hole in holes:
            text = text.replace("{" + hole + "}", f"__evolve_{hole}__")
        if "{n}" in text:
            text = text.replace("{n}", names[int(rng.integers(len(names)))])
        if "{c}" in text:
            text = text.replace("{c}", repr(float(rng.choice(self.p.constants or (1.0,)))))
        if "{d}" in text:
            text = text.replace("{d}", repr(float(rng.choice(self.p.decays or (0.9,)))))
        try:
            new = ast.parse(text, mode="eval").body
        except SyntaxError:
            raise EditFailed(f"template {template!r} does not parse") from None
        placeholders = {f"__evolve_{hole}__": expr for hole, expr in holes.items()}

        def filled(e: ast.expr) -> ast.expr:
            return copy.deepcopy(placeholders[e.id]) if isinstance(e, ast.Name) and e.id in placeholders else e

        for node in ast.walk(new):
            for fld, value in ast.iter_fields(node):
                if isinstance(value, ast.expr):
                    setattr(node, fld, filled(value))
                elif isinstance(value, list):
                    value[:] = [filled(v) if isinstance(v, ast.expr) else v for v in value]
        return filled(new)

    def add_state(
        self, trees: list[ast.Module], rng: np.random.Generator, advance: str | None = None, use: str | None = None
    ) -> None:
        """A new state entry: created in the init function's returned dict, advanced by an update template
        (``advance``, else one drawn) before each return of the update function, returned in its new state,
        and used on its result (``use``, else one drawn)."""
        spec = self.p.state
        if spec is None:
            raise EditFailed("the problem's programs have no state")
        functions = {f.name: f for f in _nodes(trees, ast.FunctionDef)}
        init, update = functions.get(spec.init_function), functions.get(spec.update_function)
        if init is None or update is None:
            raise EditFailed("no init or update function")
        made = [n.value for n in ast.walk(init) if isinstance(n, ast.Return) and isinstance(n.value, ast.Dict)]
        returns = [
            n
            for n in ast.walk(update)
            if isinstance(n, ast.Return)
            and isinstance(n.value, ast.Tuple)
            and len(n.value.elts) == 2
            and isinstance(n.value.elts[1], ast.Dict)
        ]
        if not made or not returns:
            raise EditFailed("the state is not built from dict literals")
        taken = {n.id for t in trees for n in ast.walk(t) if isinstance(n, ast.Name)} | {
            k.value for d in made for k in d.keys if isinstance(k, ast.Constant)
        }
        key = next(f"s{i}" for i in range(1, 100) if f"s{i}" not in taken)
        for d in made:
            d.keys.append(ast.Constant(key))
            d.values.append(ast.parse(spec.init, mode="eval").body)
        previous = ast.Subscript(ast.Name(spec.state_param, ast.Load()), ast.Constant(key), ast.Load())
        advance = advance or str(rng.choice(spec.updates))
        use = use or str(rng.choice(spec.uses))
        step = ast.Assign([ast.Name(key, ast.Store())], self._render(advance, {"s": previous}, [], rng))
        value = ast.Name(key, ast.Load())
        for ret in returns:
            assert isinstance(ret.value, ast.Tuple)
            result, new_state = ret.value.elts
            assert isinstance(new_state, ast.Dict)
            new_state.keys.append(ast.Constant(key))
            new_state.values.append(ast.Name(key, ast.Load()))
            ret.value.elts[0] = self._render(use, {"x": result, "v": value}, [], rng)
            body = next(b for b in _bodies([cast(ast.Module, update)]) if any(s is ret for s in b))
            body.insert(next(i for i, s in enumerate(body) if s is ret), copy.deepcopy(step))

    def duplicate_statement(self, trees: list[ast.Module], rng: np.random.Generator) -> None:
        bodies = [b for b in _bodies(trees) if any(not isinstance(s, (ast.FunctionDef, ast.Return)) for s in b)]
        if not bodies:
            raise EditFailed("no statement")
        body = bodies[int(rng.integers(len(bodies)))]
        candidates = [s for s in body if not isinstance(s, (ast.FunctionDef, ast.Return, ast.Import, ast.ImportFrom))]
        if not candidates:
            raise EditFailed("no duplicable statement")
        stmt = copy.deepcopy(candidates[int(rng.integers(len(candidates)))])
        last = len(body) - 1 if isinstance(body[-1], ast.Return) else len(body)
        body.insert(int(rng.integers(0, last + 1)), stmt)

    def delete_statement(self, trees: list[ast.Module], rng: np.random.Generator) -> None:
        bodies = [b for b in _bodies(trees) if len(b) > 1]
        if not bodies:
            raise EditFailed("no deletable statement")
        body = bodies[int(rng.integers(len(bodies)))]
        idx = [i for i, s in enumerate(body) if not isinstance(s, (ast.FunctionDef, ast.Return))]
        if not idx:
            raise EditFailed("no deletable statement")
        del body[int(rng.choice(idx))]

    # -- operators ----------------------------------------------------------------------------
    def mutate(self, code: str, rng: np.random.Generator, max_edits: int) -> tuple[str, list[str]]:
        trees = _parse_blocks(code)
        applied: list[str] = []
        n_edits = int(rng.integers(1, max_edits + 1))
        for _ in range(n_edits * 4):
            if len(applied) >= n_edits:
                break
            i = int(rng.choice(len(self.edits), p=self.weights / self.weights.sum()))
            name, edit = self.edits[i]
            try:
                edit(trees, rng)
                applied.append(name)
            except EditFailed:
                continue
        if not applied:
            raise EditFailed("no edit applied")
        return _unparse_blocks(code, trees), applied


def crossover(code_a: str, code_b: str, rng: np.random.Generator) -> tuple[str, str]:
    """Child of ``a`` with one statement or one subexpression taken from ``b``."""
    trees_a, trees_b = _parse_blocks(code_a), _parse_blocks(code_b)
    if rng.random() < 0.5:
        bodies_a = _bodies(trees_a)
        stmts_b = [s for b in _bodies(trees_b) for s in b if not isinstance(s, ast.FunctionDef)]
        if bodies_a and stmts_b:
            body = bodies_a[int(rng.integers(len(bodies_a)))]
            i = int(rng.integers(len(body)))
            if not isinstance(body[i], ast.FunctionDef):
                body[i] = copy.deepcopy(stmts_b[int(rng.integers(len(stmts_b)))])
                return _unparse_blocks(code_a, trees_a), "statement_exchange"
    slots_a = _value_exprs(trees_a)
    exprs_b = [_get(s) for s in _value_exprs(trees_b)]
    if not slots_a or not exprs_b:
        raise EditFailed("nothing to exchange")
    _set(slots_a[int(rng.integers(len(slots_a)))], copy.deepcopy(exprs_b[int(rng.integers(len(exprs_b)))]))
    return _unparse_blocks(code_a, trees_a), "subtree_exchange"
