"""The program record: one row of the lineage store per proposed child."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class Status(StrEnum):
    PROPOSED = "proposed"
    REJECTED = "rejected"  # never evaluated: invalid, duplicate, static rule...
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
    WORKER_LOST = "worker_lost"


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
    duplicate_of: int | None = None
    stage_reached: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    fitness: float | None = None
    descriptors: dict[str, float] = Field(default_factory=dict)
    code_hash: str = ""
    output: str = ""  # captured stdout/stderr (truncated), feedback for the next mutation
    created_at: float = 0.0
    eval_started_at: float | None = None
    eval_finished_at: float | None = None
    eval_seconds: float | None = None
    # LLM provenance; filled by LLM operators, empty for genetic ones.
    llm_model: str | None = None
    llm_prompt: str | None = None
    llm_response: str | None = None
    llm_tokens_in: int | None = None
    llm_tokens_out: int | None = None
    llm_cost: float | None = None
    llm_latency_s: float | None = None
    operator_info: dict[str, Any] = Field(default_factory=dict)  # what the operator did, for humans
