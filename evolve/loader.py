"""Finding and loading problems: built-in ones, any folder in the native layout, and folders in
OpenEvolve's or ShinkaEvolve's layout (see :mod:`evolve.compat`), which run unchanged.

The Problem interface (:mod:`evolve.problem`) imports nothing of this: loading is a separate job.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evolve.compat.openevolve import OpenEvolveProblem, is_openevolve_folder
from evolve.compat.shinka import ShinkaProblem, is_shinka_folder
from evolve.problem import Problem, ProblemError


@dataclass(frozen=True)
class ProblemRef:
    """A picklable pointer to a problem: enough to load it again in another process."""

    folder: str
    options: dict[str, Any]

    def load(self) -> Problem:
        return load_problem_folder(Path(self.folder), self.options)


_LOADED: dict[tuple[str, str], Problem] = {}


def problem_layout(folder: Path) -> str:
    """'native', 'openevolve', 'shinka' or 'unknown'."""
    if (folder / "problem.py").is_file():
        return "native"
    if is_openevolve_folder(folder):
        return "openevolve"
    if is_shinka_folder(folder):
        return "shinka"
    return "unknown"


def load_problem_folder(folder: Path, options: dict[str, Any] | None = None) -> Problem:
    folder = folder.resolve()
    options = options or {}
    key = (str(folder), repr(sorted(options.items())))
    if key not in _LOADED:
        layout = problem_layout(folder)
        if layout == "native":
            _LOADED[key] = _load_native(folder, options)
        elif layout == "openevolve":
            _LOADED[key] = OpenEvolveProblem(folder, options)
        elif layout == "shinka":
            _LOADED[key] = ShinkaProblem(folder, options)
        else:
            raise ProblemError(
                f"{folder}: not a problem folder: expected problem.py (evolve), initial_program.py + "
                "evaluator.py (OpenEvolve) or initial.py + evaluate.py (ShinkaEvolve)"
            )
    return _LOADED[key]


def _load_native(folder: Path, options: dict[str, Any]) -> Problem:
    entry = folder / "problem.py"
    module_name = f"evolve_problem_{abs(hash(str(folder)))}"
    spec = importlib.util.spec_from_file_location(module_name, entry)
    if spec is None or spec.loader is None:
        raise ProblemError(f"{entry}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a broken user problem is a user error, not our crash
        raise ProblemError(f"{entry}: failed to import: {type(exc).__name__}: {exc}") from None
    factory = getattr(module, "make_problem", None)
    if not callable(factory):
        raise ProblemError(f"{entry}: does not define make_problem(folder, options)")
    try:
        problem = factory(folder, options)
    except ProblemError:
        raise
    except Exception as exc:
        raise ProblemError(f"{entry}: make_problem failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(problem, Problem):
        raise ProblemError(f"{entry}: make_problem must return an evolve.problem.Problem")
    return problem


def builtin_problems() -> dict[str, Path]:
    """The problems shipped with the package (found through package resources, so an installed
    wheel finds them as a source checkout does)."""
    root = Path(str(importlib.resources.files("problems")))
    return {p.name: p for p in sorted(root.iterdir()) if (p / "problem.py").is_file()}


def resolve_problem(name: str, path: str | None) -> Path:
    if path:
        folder = Path(path)
        if not folder.is_dir():
            raise ProblemError(f"{path}: problem folder does not exist")
        return folder.resolve()
    found = builtin_problems()
    if name not in found:
        raise ProblemError(f"problem.name: unknown problem {name!r} (known: {', '.join(found) or 'none'})")
    return found[name]
