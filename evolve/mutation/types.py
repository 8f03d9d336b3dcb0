"""The static type check of a child's EVOLVE-block functions against the kinds its problem declares.

The genetic operators waste most of their failures on a value of the wrong kind: a number or the state dict
where a tensor is required (``torch.tanh(state)``, ``torch.zeros_like(0.5)``, ``grad * state``), a clamp whose
bounds mix a tensor and a number, a state key read that ``init_state`` never creates, a return that breaks the
contract. Each fails at the first call, in a process, after a slot was spent on it. Checked here it costs
nothing: the genetic operators try another edit, and a child that still fails (an LLM's) is stored as
rejected with the line and the reason.

The kind of every local name is inferred through the function (a parameter's from the problem's
:class:`~evolve.problem.BlockTypes`, a constant's, an operation's from its operands'); a name whose kind
two branches disagree on, or an expression it does not model, is unknown, and nothing is reported about an
unknown kind. So a report is a certain failure, never a guess: what the check cannot tell, the probe does.
The torch rules below are checked against torch itself (tests/test_types.py).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import cast

from evolve.mutation.ast_ops import _dotted
from evolve.problem import BlockTypes, Kind, Signature

# Functions of the tensor module whose first argument must be a tensor: a Python number raises TypeError.
TENSOR_INPUT = frozenset(
    """abs sqrt rsqrt sign sgn square tanh exp exp2 expm1 log log1p log2 log10 sigmoid relu sin cos sinh cosh
    atan asin acos neg reciprocal erf floor ceil round trunc frac nan_to_num zeros_like ones_like empty_like
    full_like randn_like rand_like mean sum prod var std amax amin max min maximum minimum fmax fmin where
    outer matmul mm dot kron flatten reshape transpose t diag triu tril trace cumsum cumprod logsumexp softmax
    sort argsort topk signbit isfinite isnan heaviside hypot atan2 copysign lerp addcmul addcdiv clamp clip
    clamp_min clamp_max fmod logaddexp numel""".split()
)
# ...whose first two arguments must both be tensors.
TENSOR_PAIR = frozenset("maximum minimum fmax fmin atan2 hypot outer dot mm matmul kron logaddexp heaviside".split())
CLAMPS = frozenset({"clamp", "clip"})  # bounds both tensors or both numbers, never one of each
# Functions of the tensor module that do not return a tensor.
NOT_TENSOR = frozenset("is_tensor is_floating_point numel finfo iinfo get_default_dtype device Generator".split())
# Tensor methods a Python number does not have (calling one on a number raises AttributeError).
TENSOR_METHODS = frozenset(
    """abs sqrt rsqrt sign square tanh exp log sigmoid neg reciprocal mean sum prod var std norm clamp clip
    max min amax amin pow mul add sub div t reshape view flatten transpose sort cumsum numel item dim
    zero_ unsqueeze squeeze expand detach clone float double""".split()
)
NUMBER_METHODS = frozenset({"item", "numel", "dim"})  # tensor methods that return a Python number
NUMBER_BUILTINS = frozenset({"float", "int", "len", "round"})


UNTYPED = Signature(params=(), returns=())  # a helper function the problem does not declare


@dataclass
class _Scope:
    kinds: dict[str, Kind | None] = field(default_factory=dict)
    dicts: dict[str, ast.Dict] = field(default_factory=dict)  # names last bound to a dict literal
    bound: set[str] = field(default_factory=set)  # locals some path has assigned by this point

    def copy(self) -> _Scope:
        return _Scope(dict(self.kinds), dict(self.dicts), set(self.bound))

    def merge(self, other: _Scope) -> None:
        """After two branches: a kind they agree on (or only one binds) is kept, a disputed one is unknown."""
        for name, kind in other.kinds.items():
            if name in self.kinds and self.kinds[name] != kind:
                self.kinds[name] = None
            else:
                self.kinds.setdefault(name, kind)
        for name in set(self.dicts) | set(other.dicts):
            if self.dicts.get(name) is not other.dicts.get(name):
                self.dicts.pop(name, None)
        self.bound |= other.bound


class _Function:
    """One pass over one function of the block, with the kinds of its parameters."""

    def __init__(
        self,
        fn: ast.FunctionDef,
        signature: Signature,
        modules: dict[str, str],
        globals_: dict[str, Kind | None],
        state_keys: frozenset[str] | None,
        tensor_module: str,
        min_ndim: int | None,
        errors: list[tuple[int, str]],
    ) -> None:
        self.fn, self.signature, self.modules = fn, signature, modules
        self.state_keys, self.tensor_module, self.errors = state_keys, tensor_module, errors
        self.scope = _Scope(dict(globals_))
        self.locals = _assigned(fn)
        self.min_ndim, self.guarded = min_ndim, 0  # guarded: inside a test of the tensors' shapes
        self.shape_flags: set[str] = set()  # names bound to a test of the shapes (is_matrix = p.ndim == 2)
        self.caught = 0  # inside a try with handlers: what fails there may be caught, so nothing is said
        self.state_param: str | None = None  # the parameter that is the incoming state, while unrebound
        self.raw: set[str] = set()  # tensor parameters not rebound: of the shapes the harness passes
        returns = len(signature.returns)
        self.returned_keys = None if not returns else _state_keys(fn) if returns == 1 else _returned_state_keys(fn)
        self.scope.bound |= {a.arg for a in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs)}
        for arg, (_, kind) in zip(fn.args.args, signature.params, strict=False):
            self.scope.kinds[arg.arg] = kind
            if kind is Kind.STATE:
                self.state_param = arg.arg
            if kind is Kind.TENSOR:
                self.raw.add(arg.arg)
        if self.state_param is not None and _tests_membership(fn, self.state_param):
            self.state_keys = self.returned_keys = None  # `if "m" in state`: which keys exist is the program's

    def run(self) -> None:
        if self.signature.returns and not any(
            isinstance(n, ast.Return) and n.value is not None for n in _own_nodes(self.fn)
        ):
            self.error(self.fn, f"{self.fn.name} returns nothing (the contract: {_contract(self.signature)})")
        self.block(self.fn.body)

    def error(self, node: ast.AST, message: str) -> None:
        if not self.caught:
            self.errors.append((getattr(node, "lineno", 0), message))

    # -- statements ----------------------------------------------------------------------------------
    def block(self, statements: list[ast.stmt]) -> None:
        guards = 0
        left: dict[str, set[str]] = {}  # tests an earlier `if` of this block left the function under
        for statement in statements:
            if isinstance(statement, ast.If) and ast.dump(statement.test) in left:
                # `if t: return ...` then `if t: ...` again (a duplicated statement): its body never runs
                self.block(statement.orelse)
                continue
            self.statement(statement)
            if isinstance(statement, ast.Return | ast.Raise | ast.Continue | ast.Break):
                break  # what follows in this block never runs
            rebound = _assigned_in([statement])
            left = {t: names for t, names in left.items() if not names & rebound}
            if isinstance(statement, ast.If) and statement.body and isinstance(statement.body[-1], ast.Return):
                test_names = {n.id for n in ast.walk(statement.test) if isinstance(n, ast.Name)}
                if not test_names & _assigned_in(statement.body):
                    left[ast.dump(statement.test)] = test_names
            # ``if param.ndim < 2: return ...``: what follows runs only for the shapes that test let through
            if isinstance(statement, ast.If) and self.tests_shape(statement.test) and _leaves(statement):
                guards += 1
                self.guarded += 1
        self.guarded -= guards

    def statement(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Assign):
            kind = self.expr(node.value)
            for target in node.targets:
                self.bind(target, kind, node.value)
        elif isinstance(node, ast.AugAssign):
            kind = self.arithmetic(node, self.expr(_as_load(node.target)), self.expr(node.value))
            self.bind(node.target, kind, None)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            self.bind(node.target, self.expr(node.value), node.value)
        elif isinstance(node, ast.Return):
            self.returned(node)
        elif isinstance(node, ast.If):
            self.expr(node.test)
            shape_test = self.tests_shape(node.test)
            self.guarded += shape_test
            self.branches(node.body, node.orelse)
            self.guarded -= shape_test
        elif isinstance(node, ast.For | ast.While):
            if isinstance(node, ast.For):
                self.expr(node.iter)
                self.bind(node.target, None, None)
            else:
                self.expr(node.test)
            carried = _assigned_in(node.body)
            self.scope.bound |= carried  # an earlier iteration may have bound them...
            for name in carried:  # ...to another kind than before the loop
                self.scope.kinds[name] = None
                self.raw.discard(name)
            self.branches(node.body, [])  # the body may run zero times
            self.block(node.orelse)
        elif isinstance(node, ast.Expr):
            self.expr(node.value)
        elif isinstance(node, ast.With):
            for item in node.items:
                self.expr(item.context_expr)
                if item.optional_vars is not None:
                    self.bind(item.optional_vars, None, None)
            self.block(node.body)
        elif isinstance(node, ast.Try):
            self.caught += bool(node.handlers)
            before = self.scope.copy()
            self.block(node.body)
            self.caught -= bool(node.handlers)
            after_body, self.scope = self.scope, before
            self.scope.bound |= after_body.bound  # a handler may run after part of the body
            for handler in node.handlers:
                if handler.name:
                    self.bind(ast.Name(handler.name, ast.Store()), None, None)
            self.block([s for h in node.handlers for s in h.body])
            self.scope.merge(after_body)
            self.block(node.orelse + node.finalbody)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if isinstance(node, ast.FunctionDef):  # a helper: its parameters of unknown kinds
                self.nested(node)
            self.scope.kinds[node.name] = None
            self.scope.bound.add(node.name)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            self.locals -= set(node.names)
        else:  # import, match, del...: what it binds is of unknown kind
            for name in _assigned_in([node]):
                self.bind(ast.Name(name, ast.Store()), None, None)

    def nested(self, fn: ast.FunctionDef) -> None:
        closure = {k: v for k, v in self.scope.kinds.items() if k in self.scope.bound or k not in self.locals}
        _Function(fn, UNTYPED, self.modules, closure, None, self.tensor_module, self.min_ndim, self.errors).run()

    def branches(self, first: list[ast.stmt], second: list[ast.stmt]) -> None:
        before = self.scope.copy()
        self.block(first)
        after_first, self.scope = self.scope, before
        self.block(second)
        self.scope.merge(after_first)

    def bind(self, target: ast.expr, kind: Kind | None, value: ast.expr | None) -> None:
        if isinstance(target, ast.Name):
            self.scope.kinds[target.id] = kind
            self.scope.bound.add(target.id)
            if isinstance(value, ast.Dict):
                self.scope.dicts[target.id] = value
            else:
                self.scope.dicts.pop(target.id, None)
            if target.id == self.state_param:
                self.state_param = None  # later reads are of another dict
            self.raw.discard(target.id)
            if value is not None and self.tests_shape(value):
                self.shape_flags.add(target.id)
            else:
                self.shape_flags.discard(target.id)
        elif isinstance(target, ast.Tuple | ast.List):
            values = value.elts if isinstance(value, ast.Tuple | ast.List) else None
            if values is not None and len(values) == len(target.elts):
                for t, v in zip(target.elts, values, strict=True):
                    self.bind(t, self.expr(v), v)
            else:
                for t in target.elts:
                    self.bind(t, None, None)
        elif isinstance(target, ast.Starred):
            self.bind(target.value, None, None)
        elif isinstance(target, ast.Subscript | ast.Attribute):
            self.expr(target.value)

    def returned(self, node: ast.Return) -> None:
        if node.value is None or not self.signature.returns:
            if node.value is not None:
                self.expr(node.value)
            return
        wanted = self.signature.returns
        value = node.value
        if len(wanted) == 1:
            self.expect(value, wanted[0], f"{self.fn.name} returns")
            return
        if isinstance(value, ast.Tuple):
            if len(value.elts) != len(wanted):
                self.error(
                    node, f"{self.fn.name} returns {len(value.elts)} values (the contract: {_contract(self.signature)})"
                )
            for element, kind in zip(value.elts, wanted, strict=False):
                self.expect(element, kind, f"{self.fn.name} returns")
            return
        got = self.expr(value)
        if got is not None:
            self.error(node, f"{self.fn.name} returns {_a(got)}, not a tuple ({_contract(self.signature)})")

    def expect(self, value: ast.expr, wanted: Kind, what: str) -> None:
        got = self.expr(value)
        if got is not None and got is not wanted:
            self.error(value, f"{what} {_a(got)} where the contract has {_a(wanted)}")
        if wanted is Kind.STATE:
            literal = value if isinstance(value, ast.Dict) else self.scope.dicts.get(getattr(value, "id", ""))
            for key, entry in zip(literal.keys if literal else [], literal.values if literal else [], strict=True):
                if self.expr(entry) is Kind.NUMBER:
                    name = key.value if isinstance(key, ast.Constant) else "?"
                    self.error(entry, f"state entry {name!r} is a number: the state holds tensors")

    # -- expressions ---------------------------------------------------------------------------------
    def expr(self, node: ast.expr) -> Kind | None:  # noqa: PLR0911, PLR0912 (one case per node type)
        if isinstance(node, ast.Constant):
            is_number = isinstance(node.value, int | float) and not isinstance(node.value, bool)
            return Kind.NUMBER if is_number else None
        if isinstance(node, ast.Name):
            if node.id in self.locals and node.id not in self.scope.bound:
                self.error(node, f"reads {node.id!r} before any assignment to it (UnboundLocalError)")
                self.scope.bound.add(node.id)  # reported once
            return self.scope.kinds.get(node.id)
        if isinstance(node, ast.BinOp):
            return self.arithmetic(node, self.expr(node.left), self.expr(node.right))
        if isinstance(node, ast.UnaryOp):
            kind = self.expr(node.operand)
            if kind is Kind.STATE:
                self.error(node, "arithmetic on the state dict (its entries are the tensors)")
            return None if isinstance(node.op, ast.Not) or kind is Kind.STATE else kind
        if isinstance(node, ast.Compare):
            kinds = [self.expr(node.left), *(self.expr(c) for c in node.comparators)]
            if Kind.TENSOR in kinds:
                return Kind.TENSOR
            return Kind.NUMBER if all(k is Kind.NUMBER for k in kinds) else None  # a bool: an int
        if isinstance(node, ast.IfExp):
            self.expr(node.test)
            shape_test = self.tests_shape(node.test)
            self.guarded += shape_test
            body, orelse = self.expr(node.body), self.expr(node.orelse)
            self.guarded -= shape_test
            return body if body == orelse else None
        if isinstance(node, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            return None  # a scope of its own
        if isinstance(node, ast.Subscript):
            return self.subscript(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Attribute):
            return self.attribute(node)
        if isinstance(node, ast.Dict):
            for key in node.keys:
                if key is not None:
                    self.expr(key)
            kinds = [self.expr(v) for v in node.values]
            return Kind.STATE if all(k is not Kind.STATE for k in kinds) else None
        for child in ast.iter_child_nodes(node):  # BoolOp, Tuple, List, comprehensions...: errors inside only
            if isinstance(child, ast.expr):
                self.expr(child)
        return None

    def arithmetic(self, node: ast.AST, left: Kind | None, right: Kind | None) -> Kind | None:
        if Kind.STATE in (left, right):
            self.error(node, "arithmetic on the state dict (its entries are the tensors)")
            return None
        if isinstance(getattr(node, "op", None), ast.MatMult) and Kind.NUMBER in (left, right):
            self.error(node, "a matrix product (@) with a number")
            return None
        if Kind.TENSOR in (left, right):
            return Kind.TENSOR
        return Kind.NUMBER if left is right is Kind.NUMBER else None

    def subscript(self, node: ast.Subscript) -> Kind | None:
        base = self.expr(node.value)
        index = self.expr(node.slice)
        key = node.slice.value if isinstance(node.slice, ast.Constant) else None
        if isinstance(node.value, ast.Attribute) and node.value.attr == "shape":
            return self.shape_index(node, key, index)
        reads_state = isinstance(node.value, ast.Name) and node.value.id == self.state_param
        if reads_state and isinstance(key, str) and self.state_keys is not None and key not in self.state_keys:
            made = ", ".join(repr(k) for k in sorted(self.state_keys)) or "none"
            self.error(node, f"reads state[{key!r}], a key the state never has (created: {made})")
        elif reads_state and isinstance(key, str) and self.returned_keys is not None and key not in self.returned_keys:
            self.error(
                node, f"reads state[{key!r}], which the state {self.fn.name} returns drops (the next step's read fails)"
            )
        if base is Kind.NUMBER:
            self.error(node, "indexes a number")
        return Kind.TENSOR if base in (Kind.STATE, Kind.TENSOR) else None

    def tests_shape(self, test: ast.expr) -> int:
        """1 when a condition looks at the tensors' dimensions (``param.ndim == 2``, ``len(g.shape)``,
        ``dim()``, or a name bound to such a test)."""
        if any(isinstance(n, ast.Name) and n.id in self.shape_flags for n in ast.walk(test)):
            return 1
        return _tests_shape(test)

    def shape_index(self, node: ast.Subscript, key: object, index: Kind | None) -> Kind | None:
        """``x.shape[k]``: a number; a float or tensor index fails, and so does a dimension a vector lacks
        (the problem's tensors may have ``min_ndim`` dimensions) unless a test of the shapes guards it."""
        if isinstance(key, float) or index is Kind.TENSOR:
            self.error(node, "indexes a shape with a float or a tensor (dimensions are ints)")
        elif (
            isinstance(key, int)
            and self.min_ndim is not None
            and not self.guarded
            and key >= self.min_ndim
            and isinstance(base := cast(ast.Attribute, node.value).value, ast.Name)
            and base.id in self.raw
        ):
            self.error(
                node,
                f"reads .shape[{key}] with no test of the tensor's dimensions (tensors here may have "
                f"{self.min_ndim}): an IndexError on those",
            )
        return Kind.NUMBER if isinstance(key, int) else None

    def attribute(self, node: ast.Attribute) -> Kind | None:
        root = _dotted(node)
        if root is not None and root.split(".")[0] in self.modules and root.split(".")[0] not in self.scope.kinds:
            return Kind.NUMBER if self.modules[root.split(".")[0]] == "math" else None
        base = self.expr(node.value)
        if base is Kind.TENSOR and node.attr in ("T", "mT", "data"):
            return Kind.TENSOR
        if base is Kind.TENSOR and node.attr == "ndim":
            return Kind.NUMBER
        return None

    def call(self, node: ast.Call) -> Kind | None:
        dotted = _dotted(node.func)
        root = dotted.split(".")[0] if dotted else None
        if root in self.modules and root not in self.scope.kinds:
            args = [self.expr(a) for a in node.args]
            keywords = {k.arg: self.expr(k.value) for k in node.keywords}
            module, name = self.modules[root], dotted.split(".", 1)[1] if dotted and "." in dotted else ""
            if module == "math":
                return Kind.NUMBER
            if module == self.tensor_module:
                return self.tensor_call(node, f"{root}.{name}", name, args, keywords)
            return None
        if isinstance(node.func, ast.Attribute):  # a method
            receiver = self.expr(node.func.value)
            for a in (*node.args, *(k.value for k in node.keywords)):
                self.expr(a)
            method = node.func.attr
            if receiver is Kind.NUMBER and method in TENSOR_METHODS:
                self.error(node, f"calls .{method}() on a number (a tensor method)")
            if receiver is Kind.STATE and method in TENSOR_METHODS:
                self.error(node, f"calls .{method}() on the state dict (its entries are the tensors)")
            if receiver is Kind.TENSOR:
                return Kind.NUMBER if method in NUMBER_METHODS else Kind.TENSOR if method in TENSOR_METHODS else None
            return None
        args = [self.expr(a) for a in node.args]
        for k in node.keywords:
            self.expr(k.value)
        if dotted == "abs" and len(args) == 1 and args[0] is not Kind.STATE:
            return args[0]
        return Kind.NUMBER if dotted in NUMBER_BUILTINS and dotted not in self.scope.kinds else None

    def tensor_call(
        self, node: ast.Call, shown: str, name: str, args: list[Kind | None], keywords: dict[str | None, Kind | None]
    ) -> Kind | None:
        if Kind.STATE in args or Kind.STATE in keywords.values():
            self.error(node, f"{shown} is given the state dict (its entries are the tensors)")
        elif name in TENSOR_INPUT and args and args[0] is Kind.NUMBER:
            self.error(node, f"{shown} needs a tensor, not a number, as its first argument")
        elif name in TENSOR_PAIR and len(args) > 1 and args[1] is Kind.NUMBER:
            self.error(node, f"{shown} needs two tensors, got a number as its second argument")
        elif name in CLAMPS:
            low = args[1] if len(args) > 1 else keywords.get("min")
            high = args[2] if len(args) > 2 else keywords.get("max")
            if {low, high} == {Kind.TENSOR, Kind.NUMBER}:
                self.error(node, f"{shown}: its bounds mix a tensor and a number (both tensors or both numbers)")
        return None if name in NOT_TENSOR else Kind.TENSOR


def _leaves(node: ast.If) -> bool:
    """Does one branch of this ``if`` always leave the function (its last statement a return or raise)?"""
    return any(branch and isinstance(branch[-1], ast.Return | ast.Raise) for branch in (node.body, node.orelse))


def _tests_membership(fn: ast.FunctionDef, name: str) -> bool:
    """Does ``fn`` test which keys ``name`` has (``"m" in state``, ``state.get``, ``state.keys()``)?"""
    for node in ast.walk(fn):
        if isinstance(node, ast.Compare) and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):
            if any(isinstance(c, ast.Name) and c.id == name for c in node.comparators):
                return True
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == name:
            if node.attr in ("keys", "items", "get", "setdefault", "pop"):
                return True
    return False


def _tests_shape(test: ast.expr) -> int:
    """1 when a condition looks at the tensors' dimensions (``param.ndim == 2``, ``len(g.shape)``, ``dim()``)."""
    for node in ast.walk(test):
        if isinstance(node, ast.Attribute) and node.attr in ("ndim", "shape"):
            return 1
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("dim", "size"):
            return 1
    return 0


_SCOPES = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.Lambda,
    ast.ClassDef,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)


def _assigned_in(statements: list[ast.stmt]) -> set[str]:
    """The names these statements bind, in their own scope (not inside nested functions or comprehensions)."""
    out: set[str] = set()
    stack: list[ast.AST] = list(statements)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.add(node.name)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            out.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            out.update((a.asname or a.name).split(".")[0] for a in node.names)
        if not isinstance(node, _SCOPES):
            stack.extend(ast.iter_child_nodes(node))
    return out


def _assigned(fn: ast.FunctionDef) -> set[str]:
    """A function's locals (Python's rule: a name it assigns anywhere), less those it declares global."""
    declared = {n for node in ast.walk(fn) if isinstance(node, ast.Global | ast.Nonlocal) for n in node.names}
    return _assigned_in(fn.body) - declared


def _own_nodes(fn: ast.FunctionDef) -> Iterable[ast.AST]:
    """The nodes of a function, not of the functions defined inside it."""
    stack: list[ast.AST] = list(fn.body)
    while stack:
        node = stack.pop()
        yield node
        stack.extend(c for c in ast.iter_child_nodes(node) if not isinstance(c, ast.FunctionDef | ast.Lambda))


def _as_load(target: ast.expr) -> ast.expr:
    return ast.Name(target.id, ast.Load()) if isinstance(target, ast.Name) else target


def _a(kind: Kind) -> str:
    return {Kind.TENSOR: "a tensor", Kind.NUMBER: "a number", Kind.STATE: "the state dict"}[kind]


def _contract(signature: Signature) -> str:
    kinds = ", ".join(k.value for k in signature.returns)
    return kinds if len(signature.returns) == 1 else f"({kinds})"


def _state_keys(fn: ast.FunctionDef) -> frozenset[str] | None:
    """The keys of the dict literals a function returns (every branch's); None when one is not a literal
    with constant keys (a comprehension, a call): then which keys exist is not checked."""
    returned = [n.value for n in _own_nodes(fn) if isinstance(n, ast.Return) and n.value is not None]
    return _literal_keys(fn, returned)


def _returned_state_keys(fn: ast.FunctionDef) -> frozenset[str] | None:
    """The keys of the state a function returns as the last element of a tuple ``(direction, state)``."""
    returned = [
        n.value.elts[-1]
        for n in _own_nodes(fn)
        if isinstance(n, ast.Return) and isinstance(n.value, ast.Tuple) and n.value.elts
    ]
    return _literal_keys(fn, returned)


def _literal_keys(fn: ast.FunctionDef, values: list[ast.expr]) -> frozenset[str] | None:
    """The constant keys of these dict literals, or of every literal a name among them is bound to in ``fn``
    (all its bindings: branches may build different states); None when any is something else."""
    if not values:
        return None
    bindings: dict[str, list[ast.expr]] = {}
    for node in _own_nodes(fn):
        targets = node.targets if isinstance(node, ast.Assign) else []
        for target in targets:
            if isinstance(target, ast.Name):
                bindings.setdefault(target.id, []).append(node.value if isinstance(node, ast.Assign) else target)
            elif isinstance(target, ast.Tuple | ast.List):
                for t in target.elts:  # unpacked: not a literal
                    if isinstance(t, ast.Name):
                        bindings.setdefault(t.id, []).append(t)
        if isinstance(node, ast.AugAssign | ast.AnnAssign | ast.For) and isinstance(node.target, ast.Name):
            bindings.setdefault(node.target.id, []).append(node.target)
    # A dict changed after it was built (``s["v"] = ...``, ``s.update(...)``) has keys no literal shows.
    changed = {
        n.value.id
        for n in _own_nodes(fn)
        if isinstance(n, ast.Subscript | ast.Attribute)
        and isinstance(n.value, ast.Name)
        and (isinstance(n, ast.Attribute) or isinstance(n.ctx, ast.Store | ast.Del))
    }
    keys: set[str] = set()
    for value in values:
        if isinstance(value, ast.Name) and value.id in changed:
            return None
        literals = bindings.get(value.id, [value]) if isinstance(value, ast.Name) else [value]
        for literal in literals:
            if not isinstance(literal, ast.Dict) or not all(
                isinstance(k, ast.Constant) and isinstance(k.value, str) for k in literal.keys
            ):
                return None
            keys.update(str(k.value) for k in literal.keys if isinstance(k, ast.Constant))
    return frozenset(keys)


def _modules(tree: ast.Module, tensor_module: str) -> dict[str, str]:
    """Names bound to the tensor module and to ``math`` by the program's imports (``import torch as T``)."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in (tensor_module, "math"):
                    out[alias.asname or alias.name] = alias.name
    return out


@lru_cache(maxsize=4096)  # a parent is checked once, not once per attempt
def type_errors(code: str, types: BlockTypes) -> tuple[tuple[int, str], ...]:
    """(line, reason) of each certain type error in ``code``'s declared functions; () when it does not
    parse (the syntax check reports that)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return ()
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    modules = _modules(tree, types.tensor_module)
    globals_: dict[str, Kind | None] = {}
    errors: list[tuple[int, str]] = []
    for node in tree.body:  # module constants (EPS = 1e-8)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    is_number = isinstance(node.value.value, int | float) and not isinstance(node.value.value, bool)
                    globals_[t.id] = Kind.NUMBER if is_number else None
    maker = functions.get(types.state_keys_from or "")
    state_keys = _state_keys(maker) if maker is not None else None
    declared = dict(types.functions)
    for name, fn in functions.items():  # the declared ones, and helpers with parameters of unknown kinds
        signature = declared.get(name, UNTYPED)
        _Function(fn, signature, modules, globals_, state_keys, types.tensor_module, types.min_ndim, errors).run()
    return tuple(sorted(set(errors)))


def new_type_errors(code: str, parents: Iterable[str], types: BlockTypes | None) -> tuple[tuple[int, str], ...]:
    """The type errors of ``code`` that none of ``parents`` already has (compared by reason: lines move)."""
    if types is None:
        return ()
    inherited = {reason for parent in parents for _, reason in type_errors(parent, types)}
    return tuple(e for e in type_errors(code, types) if e[1] not in inherited)


def describe(errors: Iterable[tuple[int, str]]) -> str:
    return "; ".join(f"line {line}: {reason}" for line, reason in errors)
