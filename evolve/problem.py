"""The Problem interface: everything a run needs to know that is not the evolved code.

A problem lives in a folder (see :mod:`evolve.loader` for the layouts it may take). Evaluation is
split in two so that fitness never rests on the candidate's word:

* :meth:`Problem.run_stage` executes the candidate (untrusted, inside the sandbox child) and
  returns JSON-able *artifacts* (e.g. the point it found, the parameters it trained);
* :meth:`Problem.score` turns those artifacts into fitness, metrics and descriptors. It runs in
  the evaluator's own process, which the candidate never ran in, so forged prints, patched
  libraries or fake return values inside the child cannot reach it.

Stages play one of four roles: the search cascade (``stages``: cheap filters, then the fitness
that drives selection), ``validate`` (larger tasks on a few promising programs: picks the run's
champion), ``heldout`` (report only, never selected on) and ``fingerprint`` (a cheap behaviour
probe: two programs with the same fingerprint compute the same thing, so the second is not
trained).
"""

from __future__ import annotations

import hashlib
import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from evolve.errors import UserError


class ProblemError(UserError, ValueError):
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
    """One step of an evaluation.

    In the search cascade a candidate whose stage fitness is below ``threshold`` stops there.
    ``timeout_s`` is this stage's own wall-clock limit (``evaluator.timeout_s`` may lower it).
    """

    name: str
    threshold: float | None = None
    timeout_s: float | None = None


@dataclass(frozen=True)
class StateEntries:
    """How a program carries state from call to call, for the genetic edit that adds an entry (``add_state``):
    ``init_function`` returns a dict literal of the entries, ``update_function`` reads them from its
    ``state_param`` and returns ``(result, {new entries})``. The edit adds a key: created as ``init`` in the
    first, advanced by one of ``updates`` ("{s}": its previous value, "{d}": a decay) in the second, and used
    by one of ``uses`` ("{x}": the result so far, "{v}": the entry's new value, "{c}" a constant, "{d}" a
    decay). One edit so turns SGD into RMSprop or momentum: the coordinated change no single
    expression edit makes."""

    init_function: str
    update_function: str
    state_param: str
    init: str
    updates: tuple[str, ...]
    uses: tuple[str, ...]


@dataclass(frozen=True)
class Primitives:
    """What the genetic operators may build with, supplied by the problem."""

    binary_ops: tuple[str, ...] = ("+", "-", "*", "/")
    calls: tuple[str, ...] = ()  # dotted names callable with one argument, e.g. "math.sqrt"
    constants: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)
    # Expression templates the problem's domain builds with (an EMA update, division with an
    # epsilon...): "{x}" is the subexpression being rewritten, "{n}" an in-scope name, "{c}" one
    # of the constants and "{d}" one of the decays, each the same wherever it recurs, e.g.
    # "{d} * {x} + (1 - {d}) * {n}".
    templates: tuple[str, ...] = ()
    decays: tuple[float, ...] = ()  # rates of running averages ("{d}"), e.g. 0.9, 0.99, 0.999
    state: StateEntries | None = None  # the add_state edit (None: the problem's programs have no state)


class Kind(StrEnum):
    """What a value in an EVOLVE block is, as far as the type check of children needs to know."""

    TENSOR = "tensor"  # a torch tensor (or any array of the problem's tensor module)
    NUMBER = "number"  # a Python int or float
    STATE = "state"  # a dict of tensors keyed by constant strings


@dataclass(frozen=True)
class Signature:
    """One function of an EVOLVE block: the kinds of its parameters (None: not modelled) and of what it
    returns (one kind, or the kinds of a returned tuple; none: not checked)."""

    params: tuple[tuple[str, Kind | None], ...]
    returns: tuple[Kind, ...]


@dataclass(frozen=True)
class BlockTypes:
    """The types of what a problem's EVOLVE blocks see, for the static type check every child passes
    before it is evaluated (``evolve.mutation.types``). ``state_keys_from`` names the function whose
    returned dict literal(s) create the state's keys: reading another key is an error. ``min_ndim``: the
    fewest dimensions a tensor the functions get may have (1: vectors), so that ``x.shape[1]`` read with no
    test of the dimensions is an error; None: not checked."""

    functions: tuple[tuple[str, Signature], ...]
    tensor_module: str = "torch"
    state_keys_from: str | None = None
    min_ndim: int | None = None


@dataclass(frozen=True)
class CodeRules:
    """What a candidate's code may not do, checked before it runs (on top of the engine's rules: the
    import allow-list, no dunder access, no eval/exec/open...). The sandbox contains what slips past."""

    banned_attributes: frozenset[str] = frozenset()  # attribute names it may not touch (module escapes...)
    private_attributes: bool = False  # may it touch _private attributes at all (e.g. its own self._cache)?
    # ...and those of a module it imported (``random._os.popen``: the way from an allowed module to a banned
    # one)? Refused unless a problem opens it.
    private_module_attributes: bool = False
    attribute_assignment: bool = True  # may it assign to attributes (monkeypatching a library)?
    banned_names: frozenset[str] = frozenset()  # names it may not use at all (e.g. ``type``, ``object``)
    classes: bool = True  # may it define classes (a tensor subclass sees every operation done on it later)?


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
    validate: Stage | None = None  # larger tasks, run on island bests and the top few: picks the champion
    heldout: Stage | None = None  # run by `evolve heldout` on the best programs only; never selected on
    confirm: Stage | None = None  # the validate tasks on fresh seeds: the champion's number (not chosen on)
    fingerprint: Stage | None = None  # cheap behaviour probe run before any training
    allowed_imports: frozenset[str] = frozenset({"math", "random"})
    code_rules: CodeRules = CodeRules()
    primitives: Primitives = Primitives()
    block_types: BlockTypes | None = None  # declared: children are type-checked before they run
    # Where fitness comes from: "trusted" (computed outside the candidate's process) or "self-reported" (a
    # folder whose evaluator shares its process with the candidate: the candidate can set its own score).
    fitness_source: str = "trusted"

    def __init__(self, folder: Path, options: dict[str, Any]) -> None:
        self.folder = folder
        self.options = options

    @abstractmethod
    def seed_programs(self) -> dict[str, str]:
        """Seed programs by name; the first is the default starting point."""

    def prepare(self) -> None:  # noqa: B027 (a hook: doing nothing is a fine default)
        """Warm up in a warm evaluation server before it forks candidates (build data, import...)."""

    @abstractmethod
    def run_stage(self, code: str, stage: str, workdir: Path) -> dict[str, Any]:
        """Execute the candidate for one stage (inside the sandbox) and return JSON-able artifacts.

        Raise :class:`ContractError` when the candidate breaks the contract.
        """

    @abstractmethod
    def score(self, code: str, stage: str, artifacts: dict[str, Any]) -> StageScore:
        """Turn a stage's artifacts into a trusted score (outside the candidate's process)."""

    def preflight(self) -> None:  # noqa: B027 (a hook: doing nothing is a fine default)
        """Before a run or an evaluation outside one (controller side): raise ProblemError for what is missing."""

    def reference_program(self) -> str | None:
        """A program whose CPU time per stage is the unit of a candidate's compute ratio (None: not measured)."""
        return None

    def apply_cost(self, score: StageScore, compute_ratio: float | None) -> StageScore:
        """Fold a stage's compute ratio (candidate CPU time / the reference program's) into its score."""
        return score

    def task_scores(self, stage_metrics: dict[str, Any]) -> dict[str, float]:
        """Per-task scores in a stage's metrics, for the tables `evolve baselines` and `evolve heldout` print
        (a problem without tasks: none)."""
        return {}

    def follow_up(self, stage: str, rounds: list[dict[str, Any]]) -> dict[str, Any] | None:
        """After a round of ``stage`` (trusted side): the request for another round, or None when the stage
        is complete. ``run_stage`` receives it as its ``request`` keyword; at most a few rounds run."""
        return None

    def score_rounds(self, code: str, stage: str, rounds: list[dict[str, Any]]) -> StageScore:
        """The stage's score from the artifacts of all its rounds (one round: :meth:`score`)."""
        return self.score(code, stage, rounds[-1])

    def fingerprint_of(self, artifacts: dict[str, Any]) -> str:
        """The behaviour fingerprint of the ``fingerprint`` stage's artifacts.

        The default hashes them with every float rounded to 6 significant digits, so programs that
        differ only below that precision on the probe count as the same behaviour. A forged
        fingerprint gains a candidate nothing: a collision only makes it a duplicate.
        """
        text = json.dumps(_rounded(artifacts), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def declaration(self) -> dict[str, Any]:
        """What a reader of the archive needs to know of the problem (stored with the run)."""

        def stage(s: Stage | None) -> dict[str, Any] | None:
            return None if s is None else {"name": s.name, "threshold": s.threshold, "timeout_s": s.timeout_s}

        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "descriptors": [d.__dict__ for d in self.descriptors],
            "stages": [stage(s) for s in self.stages],
            "validate": stage(self.validate),
            "heldout": stage(self.heldout),
            "confirm": stage(self.confirm),
            "fingerprint": stage(self.fingerprint),
            "allowed_imports": sorted(self.allowed_imports),
        }

    def stage(self, name: str) -> Stage:
        """The stage of this problem with that name, in any role."""
        for s in (*self.stages, self.validate, self.heldout, self.confirm, self.fingerprint):
            if s is not None and s.name == name:
                return s
        raise ProblemError(f"problem {self.name} has no stage {name!r}")


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value
