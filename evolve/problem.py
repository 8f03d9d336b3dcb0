"""The Problem interface: everything a run needs to know that is not the evolved code.

A problem lives in a folder with a ``problem.py`` that defines ``make_problem(folder, options) -> Problem``
(or in OpenEvolve's layout, see :mod:`evolve.openevolve_compat`).
Evaluation is split in two so that fitness never rests on the candidate's word:

* :meth:`Problem.run_stage` executes the candidate (untrusted, inside the sandbox child) and
  returns JSON-able *artifacts* (e.g. the point it found, the parameters it trained);
* :meth:`Problem.score` turns those artifacts into fitness, metrics and descriptors. It runs in
  the evaluator's own process, which the candidate never ran in, so forged prints, patched
  libraries or fake return values inside the child cannot reach it.
"""

from __future__ import annotations

import importlib.util
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROBLEMS_DIR = Path(__file__).resolve().parent.parent / "problems"


class ProblemError(ValueError):
    """The problem folder or its options are unusable; the message names the folder."""


class ContractError(Exception):
    """The candidate does not honour the problem's contract (missing function, wrong shapes...)."""


@dataclass(frozen=True)
class Descriptor:
    """One behaviour axis of the MAP-Elites grid."""

    name: str
    low: float
    high: float
    bins: int
    description: str = ""


@dataclass(frozen=True)
class Stage:
    """One step of the evaluation cascade.

    A candidate whose stage fitness is below ``threshold`` stops there. ``timeout_s`` overrides
    the evaluator's default wall-clock limit for this stage.
    """

    name: str
    threshold: float | None = None
    timeout_s: float | None = None


@dataclass(frozen=True)
class Primitives:
    """What the genetic operators may build with, supplied by the problem."""

    binary_ops: tuple[str, ...] = ("+", "-", "*", "/")
    calls: tuple[str, ...] = ()  # dotted names callable with one argument, e.g. "math.sqrt"
    constants: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)
    # Expression templates the problem's domain builds with (an EMA update, division with an
    # epsilon...): "{x}" is the subexpression being rewritten, "{n}" an in-scope name and "{c}" one
    # of the constants, each the same wherever it recurs, e.g. "{c} * {x} + (1 - {c}) * {n}".
    templates: tuple[str, ...] = ()


@dataclass
class StageScore:
    """The trusted outcome of one stage."""

    fitness: float
    metrics: dict[str, Any] = field(default_factory=dict)
    descriptors: dict[str, float] = field(default_factory=dict)


class Problem(ABC):
    name: str = "unnamed"
    version: str = "0"
    description: str = ""
    descriptors: tuple[Descriptor, ...] = ()
    stages: tuple[Stage, ...] = (Stage("main"),)
    heldout: Stage | None = None  # run by `evolve heldout` on the best programs only; never selected on
    allowed_imports: frozenset[str] = frozenset({"math", "random"})
    primitives: Primitives = Primitives()

    def __init__(self, folder: Path, options: dict[str, Any]) -> None:
        self.folder = folder
        self.options = options

    @abstractmethod
    def seed_programs(self) -> dict[str, str]:
        """Seed programs by name; the first is the default starting point."""

    def prepare(self) -> None:
        """Warm up in a warm evaluation server before it forks candidates (build data, import...)."""

    @abstractmethod
    def run_stage(self, code: str, stage: str, workdir: Path) -> dict[str, Any]:
        """Execute the candidate for one stage (inside the sandbox) and return JSON-able artifacts.

        Raise :class:`ContractError` when the candidate breaks the contract.
        """

    @abstractmethod
    def score(self, code: str, stage: str, artifacts: dict[str, Any]) -> StageScore:
        """Turn a stage's artifacts into a trusted score (outside the candidate's process)."""


@dataclass(frozen=True)
class ProblemRef:
    """A picklable pointer to a problem: enough to load it again in another process."""

    folder: str
    options: dict[str, Any]

    def load(self) -> Problem:
        return load_problem_folder(Path(self.folder), self.options)


_LOADED: dict[tuple[str, str], Problem] = {}


def load_problem_folder(folder: Path, options: dict[str, Any] | None = None) -> Problem:
    folder = folder.resolve()
    options = options or {}
    key = (str(folder), repr(sorted(options.items())))
    if key in _LOADED:
        return _LOADED[key]
    entry = folder / "problem.py"
    if not entry.is_file():
        from evolve.openevolve_compat import OpenEvolveProblem, is_openevolve_folder

        if is_openevolve_folder(folder):
            _LOADED[key] = OpenEvolveProblem(folder, options)
            return _LOADED[key]
        raise ProblemError(f"{folder}: no problem.py defining make_problem(folder, options), and not an "
                           "OpenEvolve-layout folder (initial_program.py + evaluator.py)")
    module_name = f"evolve_problem_{abs(hash(str(folder)))}"
    spec = importlib.util.spec_from_file_location(module_name, entry)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a broken user problem is a user error, not our crash
        raise ProblemError(f"{entry}: failed to import: {type(exc).__name__}: {exc}") from None
    factory = getattr(module, "make_problem", None)
    if not callable(factory):
        raise ProblemError(f"{entry}: does not define make_problem(options)")
    try:
        problem = factory(folder, options)
    except ProblemError:
        raise
    except Exception as exc:
        raise ProblemError(f"{entry}: make_problem failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(problem, Problem):
        raise ProblemError(f"{entry}: make_problem must return an evolve.problem.Problem")
    _LOADED[key] = problem
    return problem


def builtin_problems() -> dict[str, Path]:
    return {p.name: p for p in sorted(PROBLEMS_DIR.iterdir()) if (p / "problem.py").is_file()}


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
