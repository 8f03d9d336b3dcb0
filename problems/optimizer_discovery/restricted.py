"""What an update rule may reach: tensor functions from ``torch`` and ``math``, nothing else.

An update rule runs in the same process as the training harness, so anything that leads from torch
to the interpreter (``torch.sys.modules``, ``torch.package.sys_importer``...) would let it patch the
training loop or read the validation data. Two walls close that:

* before anything runs, the problem's code rules refuse private and dunder attributes, attribute
  assignment, the attribute names in :data:`BANNED_ATTRIBUTES`, and ``getattr`` other than a direct
  call with a constant public name (evaluators.static_rules);
* at run time the rule's ``import torch`` / ``import math`` get *allow-list views*: ``torch`` offers
  its tensor functions (the ATen functions and ``torch.functional``'s), dtypes and the math-only
  submodules ``linalg``, ``special`` and ``fft``; ``math`` its functions and constants. A view holds no
  reference to the real module an attribute could reach, and refuses assignment. ``getattr`` in the
  rule's builtins refuses private and banned names.
"""

from __future__ import annotations

import builtins
import math
import types
from typing import Any

import torch

# Attribute names that lead from a library to the interpreter, other modules, files or devices.
BANNED_ATTRIBUTES = frozenset(
    {
        "sys",
        "os",
        "modules",
        "builtins",
        "importlib",
        "subprocess",
        "gc",
        "inspect",
        "ctypes",
        "pickle",
        "marshal",
        "shutil",
        "socket",
        "signal",
        "threading",
        "multiprocessing",
        "load",
        "loads",
        "save",
        "library",
        "utils",
        "hub",
        "ops",
        "cpp_extension",
        "serialization",
        "f_globals",
        "f_locals",
        "f_back",
        "f_builtins",
        "tb_frame",
        "gi_frame",
        "cr_frame",
        "func_globals",
        "set_num_threads",
        "manual_seed",
        "seed",
        "set_default_dtype",
        "set_default_device",
        "package",
        "cuda",
        "backends",
        "from_file",
        "jit",
        "compile",
        "distributed",
        "storage",
        "untyped_storage",
        "set_per_process_memory_fraction",
        "tofile",
        "fromfile",
        "module",
        "testing",
        # ways to a tensor subclass or a hook that would see the harness's later operations on the tensor
        "as_subclass",
        "register_hook",
        "register_post_accumulate_grad_hook",
        "data",
        "grad_fn",
        "Tensor",
        "Parameter",
        "autograd",
        "func",
        "nn",
        "overrides",
        "fx",
        "export",
    }
)
# Builtins that make classes or reach types: an update rule needs none of them.
BANNED_NAMES = frozenset(
    {
        "type",
        "object",
        "super",
        "classmethod",
        "staticmethod",
        "property",
        "isinstance",
        "issubclass",
        "__build_class__",
        "dir",
        "id",
        "hash",
    }
)
# Tensor functions that touch files, global state or other processes anyway.
_DENIED = frozenset(
    {
        "from_file",
        "set_flush_denormal",
        "set_num_threads",
        "set_num_interop_threads",
        "manual_seed",
        "seed",
        "set_default_dtype",
        "set_default_device",
        "set_rng_state",
        "get_rng_state",
    }
)


def _public_functions(module: types.ModuleType) -> frozenset[str]:
    return frozenset(
        n
        for n in dir(module)
        if not n.startswith("_")
        and callable(getattr(module, n, None))
        and not isinstance(getattr(module, n, None), (types.ModuleType, type))
    )


def _torch_names() -> frozenset[str]:
    names = {n for n in dir(torch._C._VariableFunctions) if not n.startswith("_")}
    names |= set(torch.functional.__all__)
    names |= {n for n in dir(torch) if isinstance(getattr(torch, n, None), torch.dtype)}
    names |= {"finfo", "iinfo", "pi", "inf", "nan", "e", "is_tensor", "numel"}  # no class to subclass
    return frozenset(n for n in names if hasattr(torch, n)) - _DENIED - BANNED_ATTRIBUTES


def _view(module: types.ModuleType, allowed: frozenset[str], subviews: dict[str, types.ModuleType]) -> types.ModuleType:
    """A module-like object offering only ``allowed`` names (and ``subviews``). The real module lives in
    this closure only, so no attribute of the view leads back to it."""
    label = module.__name__

    class View(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            if name in subviews:
                return subviews[name]
            if name not in allowed:
                raise AttributeError(f"{label}.{name} is not available to update rules")
            return getattr(module, name)

        def __setattr__(self, name: str, value: Any) -> None:
            raise AttributeError(f"update rules may not change {label}.{name}")

        def __delattr__(self, name: str) -> None:
            raise AttributeError(f"update rules may not change {label}.{name}")

    return View(label)


_SUB = {
    name: _view(getattr(torch, name), _public_functions(getattr(torch, name)), {})
    for name in ("linalg", "special", "fft")
}
VIEWS = {
    "torch": _view(torch, _torch_names(), _SUB),
    "math": _view(math, frozenset(n for n in dir(math) if not n.startswith("_")), {}),
    **{f"torch.{name}": view for name, view in _SUB.items()},
}


def _import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
    """``import torch`` / ``import torch.linalg as la`` / ``from torch import linalg``: views, never modules."""
    if level or name not in VIEWS:
        raise ImportError(
            f"update rules may import only torch (with torch.linalg, torch.special, torch.fft) and math, not {name!r}"
        )
    return VIEWS[name] if fromlist else VIEWS[name.split(".")[0]]


def _getattr(obj: Any, name: str, *default: Any) -> Any:
    if not isinstance(name, str) or name.startswith("_") or name in BANNED_ATTRIBUTES:
        raise AttributeError(f"getattr({name!r}) is not available to update rules")
    return getattr(obj, name, *default)


SAFE_BUILTINS = {
    k: v
    for k, v in vars(builtins).items()
    if k
    not in {
        "open",
        "exec",
        "eval",
        "compile",
        "__import__",
        "globals",
        "locals",
        "vars",
        "input",
        "breakpoint",
        "help",
        "exit",
        "quit",
        "setattr",
        "delattr",
        "memoryview",
        "getattr",
    }
    and k not in BANNED_NAMES
}
SAFE_BUILTINS["__import__"] = _import
SAFE_BUILTINS["getattr"] = _getattr


def rule_namespace() -> dict[str, Any]:
    """The globals an update rule's module runs in (a fresh dict each time: no state is shared)."""
    return {"__name__": "candidate", "__builtins__": SAFE_BUILTINS}
