"""What an update rule may reach: ``torch`` and ``math`` without the doors out of the rule.

An update rule runs in the same process as the training harness, so through a module attribute
(``torch.sys.modules``...) it could reach the harness and its validation data. Two walls close that:
the problem's code rules refuse, before anything runs, the attribute names that lead out
(:data:`BANNED_ATTRIBUTES`), private attributes and attribute assignment; and at run time the rule's
``import torch`` gets :class:`RestrictedModule` views that hide the same names and refuse assignment.
Tensors, functions and ordinary submodules (``torch.linalg``, ``torch.nn.functional``) behave as usual.
"""

from __future__ import annotations

import builtins
import types
from typing import Any

# Attribute names that lead from torch/math to the interpreter, other modules, files or custom ops.
BANNED_ATTRIBUTES = frozenset({
    "sys", "os", "modules", "builtins", "importlib", "subprocess", "gc", "inspect", "ctypes", "pickle", "marshal",
    "shutil", "socket", "signal", "threading", "multiprocessing", "load", "loads", "save", "library", "utils", "hub",
    "ops", "cpp_extension", "serialization", "f_globals", "f_locals", "f_back", "f_builtins", "tb_frame", "gi_frame",
    "cr_frame", "func_globals", "set_num_threads", "manual_seed", "seed", "set_default_dtype", "set_default_device",
})
ALLOWED_MODULES = frozenset({"torch", "math"})


class RestrictedModule(types.ModuleType):
    """A read-only view of a module without private or banned attributes (submodules are views too)."""

    def __init__(self, module: types.ModuleType) -> None:
        super().__init__(module.__name__)
        object.__setattr__(self, "_RestrictedModule__module", module)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in BANNED_ATTRIBUTES:
            raise AttributeError(f"{self.__name__}.{name} is not available to update rules")
        value = getattr(self.__module, name)
        return RestrictedModule(value) if isinstance(value, types.ModuleType) else value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"update rules may not change {self.__name__}.{name}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"update rules may not change {self.__name__}.{name}")


def _import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
    """``import torch`` / ``import torch.linalg as la`` / ``from torch import nn``: views, never the modules."""
    if level or name.split(".")[0] not in ALLOWED_MODULES:
        raise ImportError(f"update rules may import only {', '.join(sorted(ALLOWED_MODULES))}, not {name!r}")
    return RestrictedModule(__import__(name, globals, locals, fromlist, level))


SAFE_BUILTINS = {k: v for k, v in vars(builtins).items()
                 if k not in {"open", "exec", "eval", "compile", "__import__", "globals", "locals", "vars", "input",
                              "breakpoint", "help", "exit", "quit", "setattr", "delattr", "memoryview"}}
SAFE_BUILTINS["__import__"] = _import


def rule_namespace() -> dict[str, Any]:
    """The globals an update rule's module runs in."""
    return {"__name__": "candidate", "__builtins__": SAFE_BUILTINS}
