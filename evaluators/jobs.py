"""The contract between the controller and the evaluators: what to evaluate, what comes back, and
the Backend protocol every backend (process, Ray, cache) implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from evolve.program import FailureKind


class JobKind(StrEnum):
    """Which of the problem's stage roles a job runs (see evolve.problem)."""

    SEARCH = "search"  # the cascade of `Problem.stages`: the search fitness
    FINGERPRINT = "fingerprint"  # the behaviour probe, before any training
    VALIDATE = "validate"  # larger tasks: the champion is picked on them
    CONFIRM = "confirm"  # the validate tasks on fresh seeds: the champion's reported number
    HELDOUT = "heldout"  # report only


@dataclass(frozen=True)
class EvalJob:
    program_id: int
    code: str
    kind: JobKind = JobKind.SEARCH


@dataclass
class EvalResult:
    """The outcome of one job; plain data so that it crosses Ray unchanged."""

    program_id: int
    ok: bool
    kind: JobKind = JobKind.SEARCH
    fitness: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    descriptors: dict[str, float] = field(default_factory=dict)
    stage_reached: str | None = None
    failure_kind: FailureKind | None = None
    reason: str | None = None
    output: str = ""
    seconds: float = 0.0
    started_at: float = 0.0
    fingerprint: str | None = None  # FINGERPRINT jobs
    cached: bool = False  # answered by the cross-run evaluation cache (evaluators.cache)


class Backend(Protocol):
    def submit(self, job: EvalJob) -> None: ...
    def wait(self, timeout: float) -> list[EvalResult]: ...
    def in_flight(self) -> int: ...
    def close(self, abort: bool = False) -> None:
        """Release the backend; ``abort``: stop what is running now instead of letting it finish."""
        ...
