"""The records of a run: one :class:`Program` per proposed child, and the enums its fields take.

Every enum is str-valued, so the archive keeps plain text ("evaluated", "timeout"...) that sqlite3
and pandas read without this package.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

SEED_OPERATOR = "seed"  # the operator name of a run's starting programs
# The stage_reached of a child that failed its behaviour probe: it failed before any training, so it is
# stored and shown but spends no evaluation budget.
PROBE_STAGE = "fingerprint"


class Status(StrEnum):
    PROPOSED = "proposed"  # accepted, waiting for an evaluation slot
    REJECTED = "rejected"  # never trained: invalid, duplicate, static rule... (`rejection` says which)
    EVALUATING = "evaluating"
    EVALUATED = "evaluated"  # ran; `stage_reached` says how far the cascade got
    FAILED = "failed"  # ran and broke; `failure_kind` says how


class FailureKind(StrEnum):
    SYNTAX = "syntax"
    STATIC_RULE = "static_rule"
    IMPORT = "import"
    TIMEOUT = "timeout"
    MEMORY = "memory"
    CRASH = "crash"
    NAN = "nan"
    CONTRACT = "contract"
    DIVERGED = "diverged"  # trained, but no setting tried got below the untrained model's loss
    WORKER_LOST = "worker_lost"

    @classmethod
    def parse(cls, value: object) -> FailureKind:
        """A kind reported from inside the sandbox (untrusted text): unknown values are crashes."""
        try:
            return cls(str(value))
        except ValueError:
            return cls.CRASH


class RejectionKind(StrEnum):
    """Why a child was never trained."""

    INVALID = "invalid"  # does not parse, breaks the EVOLVE-BLOCK markers, or a static rule
    DUPLICATE_CODE = "duplicate_code"  # same normalized code as an earlier program
    DUPLICATE_BEHAVIOUR = "duplicate_behaviour"  # same behaviour fingerprint as an earlier program
    OPERATOR = "operator"  # the operator made no child (no usable edit, an unusable LLM reply...)


class LLMFailureCause(StrEnum):
    """Why an LLM call's attempt failed, read from its stored error (``ExceptionName [status]: message``)."""

    CONNECTION = "connection"  # no answer: refused, DNS, timeout
    AUTH = "auth"  # a key missing, wrong or not allowed (401, 403)
    NOT_FOUND = "not_found"  # no such model or endpoint (404)
    RATE_LIMIT = "rate_limit"  # 429
    SERVER = "server"  # 5xx
    BAD_REQUEST = "bad_request"  # 400 and other 4xx
    OTHER = "other"

    @classmethod
    def of(cls, error: str) -> LLMFailureCause:
        name, _, rest = error.partition(":")
        words = name.split()
        status = int(words[1]) if len(words) > 1 and words[1].isdigit() else None
        kind = words[0].lower() if words else ""
        text = rest.lower()
        # litellm wraps a refused connection in InternalServerError 500 ("... Connection error."): the message
        # says what happened where the status does not
        if "connection error" in text or "connection refused" in text or "name or service not known" in text:
            return cls.CONNECTION
        if "authentication" in kind or "permissiondenied" in kind or status in (401, 403):
            return cls.AUTH
        if "notfound" in kind or status == 404:
            return cls.NOT_FOUND
        if "ratelimit" in kind or status == 429:
            return cls.RATE_LIMIT
        if "connection" in kind or "timeout" in kind or status in (408, 504):
            return cls.CONNECTION
        if status is not None and status >= 500 or "internalserver" in kind or "serviceunavailable" in kind:
            return cls.SERVER
        if status is not None and 400 <= status < 500 or "badrequest" in kind:
            return cls.BAD_REQUEST
        return cls.OTHER

    @property
    def unreachable(self) -> bool:
        """The model cannot answer this run as configured (asking again will not help)."""
        return self in (LLMFailureCause.CONNECTION, LLMFailureCause.AUTH, LLMFailureCause.NOT_FOUND)


class RunState(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"  # a budget was spent
    INTERRUPTED = "interrupted"  # Ctrl-C, SIGTERM or a kill: `evolve resume` continues it
    FAILED = "failed"  # stopped on an error (a failing seed, endless rejections): `stop_reason` says why


class EventKind(StrEnum):
    ELITE_ADDED = "elite_added"
    ELITE_REPLACED = "elite_replaced"
    MIGRATION = "migration"
    ISLAND_RESET = "island_reset"


class LLMProvenance(BaseModel):
    """Which model wrote a child and what it cost (the answered attempt's prompt and reply, totals over
    attempts)."""

    model: str
    prompt: str | None = None  # JSON list of chat messages
    response: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost: float | None = None  # USD; None where the price is unknown
    latency_s: float | None = None


class LLMOutcome(BaseModel):
    """How one finished LLM child turned out: what the model selector learns from and what a repair
    is queued for (read from the archive, so the selector replays exactly on resume)."""

    id: int
    model: str
    cost: float | None
    fitness: float | None
    operator: str
    failure_kind: str | None
    code_chars: int
    ancestor_fitness: tuple[float | None, ...]  # parent, grandparent, great-grandparent

    @property
    def nearest_scored_ancestor(self) -> float | None:
        """A repair's parent failed: the gain is measured against the nearest ancestor that scored."""
        return next((f for f in self.ancestor_fitness if f is not None), None)


class Program(BaseModel):
    """Everything known about one candidate. ``id`` is assigned by the store (monotonic)."""

    id: int | None = None
    code: str
    parent_ids: list[int] = Field(default_factory=list)
    operator: str
    island: int
    generation: int = 0
    status: Status = Status.PROPOSED
    reason: str | None = None  # rejection reason or failure message
    failure_kind: FailureKind | None = None
    rejection: RejectionKind | None = None
    duplicate_of: int | None = None
    stage_reached: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)  # per stage name; "validate"/"heldout" too
    fitness: float | None = None  # search fitness: drives selection
    validated_fitness: float | None = None  # the validate stage's fitness: picks the champion
    heldout_fitness: float | None = None  # report only, never selected on
    descriptors: dict[str, float] = Field(default_factory=dict)
    code_hash: str = ""
    fingerprint: str | None = None  # behaviour fingerprint (problems that define one)
    output: str = ""  # captured stdout/stderr (truncated), feedback for the next mutation
    created_at: float = 0.0
    eval_started_at: float | None = None
    eval_finished_at: float | None = None
    eval_seconds: float | None = None
    llm: LLMProvenance | None = None  # None for genetic operators
    operator_info: dict[str, Any] = Field(default_factory=dict)  # what the operator did, for humans

    @property
    def stored_id(self) -> int:
        """The id of a program the store holds; a program not stored yet has none, and asking is a bug."""
        if self.id is None:
            raise RuntimeError(f"program of operator {self.operator!r} has no id: it was never stored")
        return self.id

    @property
    def is_seed(self) -> bool:
        return self.operator == SEED_OPERATOR

    def tier(self, role: str) -> dict[str, Any]:
        """A higher tier's result (``validate``, ``confirm``, ``heldout``) as the read side shows it: fitness,
        its 95% interval over seeds and the compute ratio where the problem gives them (empty if not run)."""
        stored = self.metrics.get(role)
        if not isinstance(stored, dict):
            return {}
        stage = stored.get("metrics", {}).get(role, {}) if isinstance(stored.get("metrics"), dict) else {}
        return {
            "fitness": stored.get("fitness"),
            "interval": stage.get("interval"),
            "compute_ratio": stage.get("compute_ratio"),
            "failure_kind": stored.get("failure_kind"),
        }

    def champion_summary(self) -> dict[str, Any]:
        """What `status`, the report and the web view say of a champion: every tier, with intervals."""
        return {
            "id": self.id,
            "fitness": self.fitness,
            "validated_fitness": self.validated_fitness,
            "validated_interval": self.tier("validate").get("interval"),
            "confirmed_fitness": self.tier("confirm").get("fitness"),
            "confirmed_interval": self.tier("confirm").get("interval"),
            "heldout_fitness": self.heldout_fitness,
            "heldout_interval": self.tier("heldout").get("interval"),
            "operator": self.operator,
        }
