"""The LLM client: litellm calls with retries, a concurrency limit, spend accounting and budgets.

litellm is imported lazily (it costs seconds) and with its remote price map switched off (its
import otherwise does a blocking network lookup). Each attempt of a call becomes a
:class:`CallRecord` that the controller stores; API keys are read once from the environment
variables named in the config and are never part of a record.
"""

from __future__ import annotations

import email.utils
import os
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from evolve.config import BudgetConfig, ConfigError, LLMConfig, ModelConfig
from evolve.program import LLMFailureCause

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}
MAX_RETRY_AFTER_S = 600.0


@dataclass
class CallRecord:
    """One attempt of one LLM call, as stored in the ``llm_calls`` table."""

    purpose: str  # the operator (llm_diff, ...) or "insights"
    model: str
    attempt: int
    messages: list[dict[str, str]]
    started_at: float
    response: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost: float | None = None
    latency_s: float = 0.0
    error: str | None = None


class LLMCallFailed(Exception):
    """Every attempt failed (or the error was not retryable); ``calls`` holds the attempts."""

    def __init__(self, message: str, calls: list[CallRecord]) -> None:
        super().__init__(message)
        self.calls = calls


@dataclass
class Spend:
    """Tokens and USD spent by this run's LLM calls (all attempts, every model)."""

    tokens: int = 0
    cost: float = 0.0


def import_litellm() -> Any:
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no network lookup at import
    try:
        import litellm
    except ImportError:
        raise ConfigError(
            "llm.models is set but litellm is not installed: pip install -e '.[llm]' (scripts/setup.sh installs it)"
        ) from None

    litellm.suppress_debug_info = True
    litellm.drop_params = True  # a provider without e.g. temperature gets the call without it
    if hasattr(litellm, "telemetry"):
        litellm.telemetry = False
    return litellm


class LLMClient:
    def __init__(self, cfg: LLMConfig, budget: BudgetConfig) -> None:
        self.cfg, self.budget = cfg, budget
        self.models = {m.model: m for m in cfg.models}
        self._keys: dict[str, str] = {}
        for i, m in enumerate(cfg.models):
            if m.api_key_env:
                value = os.environ.get(m.api_key_env)
                if not value:
                    raise ConfigError(f"llm.models.{i}.api_key_env: environment variable {m.api_key_env} is not set")
                self._keys[m.model] = value
        self._litellm: Any = import_litellm() if cfg.models else None
        self._slots = threading.BoundedSemaphore(cfg.max_concurrency)
        self._lock = threading.Lock()
        self.spent = Spend()
        # A model whose calls keep failing for a cause that asking again will not fix (no connection, a key
        # refused, no such model) is set aside for the rest of this invocation (a resume tries it again).
        self._unreachable_calls: dict[str, int] = {}
        self.set_aside: dict[str, str] = {}  # model -> why
        self._notices: list[str] = []
        self.start_notes = [note for i, m in enumerate(cfg.models) if (note := self._key_note(i, m))]

    def _key_note(self, index: int, model: ModelConfig) -> str | None:
        """A hosted model with no key where litellm looks for one: its calls will fail; say so at start."""
        if model.api_key_env or model.api_base or self._litellm is None:
            return None
        try:
            missing = self._litellm.validate_environment(model.model).get("missing_keys") or []
        except Exception:  # noqa: BLE001 (a provider litellm does not know: its own error comes with the call)
            return None
        if not missing:
            return None
        return (
            f"llm.models.{index} ({model.model}): {', '.join(missing)} not set and no api_key_env or api_base "
            "given: its calls will fail"
        )

    def take_notices(self) -> list[str]:
        """What happened to the models since the last call (one line each), for the run's output."""
        with self._lock:
            out, self._notices = self._notices, []
        return out

    def usable_models(self) -> list[str]:
        with self._lock:
            return [m for m in self.models if m not in self.set_aside]

    def _count_outcome(self, model: str, error: str | None) -> None:
        """After each call: a success clears the model's count; an unreachable failure adds one."""
        limit = self.cfg.unreachable_after
        cause = None if error is None else LLMFailureCause.of(error)
        with self._lock:
            if error is None or cause is None or not cause.unreachable:
                self._unreachable_calls[model] = 0
                return
            n = self._unreachable_calls[model] = self._unreachable_calls.get(model, 0) + 1
            if not limit or n < limit or model in self.set_aside:
                return
            self.set_aside[model] = f"{n} calls in a row failed ({cause}: {error[:200]})"
            left = [m for m in self.models if m not in self.set_aside]
            then = (
                f"the run goes on with {', '.join(left)}"
                if left
                else "no model is left: the LLM operators stop (the genetic ones, if any, go on)"
            )
            self._notices.append(
                f"llm: {model} is unreachable ({self.set_aside[model]}); the run stops using it; {then}"
            )

    def restore_spend(self, spent: Spend) -> None:
        """On resume: what the archive says the run has spent already (the budget counts from there)."""
        with self._lock:
            self.spent = Spend(spent.tokens, spent.cost)

    def spend(self) -> Spend:
        with self._lock:
            return Spend(self.spent.tokens, self.spent.cost)

    @property
    def secrets(self) -> list[str]:
        return list(self._keys.values())

    def budget_spent(self) -> str | None:
        """Why no new LLM call may start, or None."""
        with self._lock:
            if self.models and len(self.set_aside) == len(self.models):
                return "every LLM model is unreachable: " + "; ".join(f"{m}: {w}" for m, w in self.set_aside.items())
            if self.budget.max_llm_tokens is not None and self.spent.tokens >= self.budget.max_llm_tokens:
                return f"LLM token budget spent ({self.spent.tokens} >= {self.budget.max_llm_tokens})"
            if self.budget.max_llm_cost is not None and self.spent.cost >= self.budget.max_llm_cost:
                return f"LLM cost budget spent (${self.spent.cost:.4f} >= ${self.budget.max_llm_cost})"
        return None

    def complete(self, model_name: str, messages: list[dict[str, str]], purpose: str) -> tuple[str, list[CallRecord]]:
        """The reply text of one call, retried on transient errors; raises :class:`LLMCallFailed`."""
        model = self.models[model_name]
        calls: list[CallRecord] = []
        for attempt in range(1 + self.cfg.max_retries):
            spent = self.budget_spent()
            if spent:
                raise LLMCallFailed(spent, calls)
            record = CallRecord(purpose, model.model, attempt, messages, time.time())
            calls.append(record)
            retry_after: float | None = None
            with self._slots:
                t0 = time.monotonic()
                try:
                    resp = self._litellm.completion(
                        model=model.model,
                        messages=messages,
                        temperature=model.temperature,
                        max_tokens=model.max_tokens,
                        timeout=model.timeout_s,
                        api_base=model.api_base,
                        api_key=self._api_key(model),
                        num_retries=0,
                        max_retries=0,
                    )
                    record.latency_s = time.monotonic() - t0
                    self._read_reply(model, resp, record)
                    self._count_outcome(model.model, None)
                    return record.response or "", calls
                except Exception as exc:  # noqa: BLE001 (litellm raises many types; all are recorded)
                    record.latency_s = time.monotonic() - t0
                    status = getattr(exc, "status_code", None)
                    record.error = f"{type(exc).__name__}" + (f" {status}" if status else "") + f": {str(exc)[:500]}"
                    retryable = self._retryable(exc, status)
                    retry_after = _retry_after(exc)
            if not retryable:
                self._count_outcome(model.model, record.error)
                raise LLMCallFailed(f"{model.model}: {record.error}", calls)
            if attempt < self.cfg.max_retries:
                time.sleep(self._backoff(attempt, retry_after))
        self._count_outcome(model.model, calls[-1].error)
        raise LLMCallFailed(f"{model.model}: gave up after {len(calls)} attempts; last: {calls[-1].error}", calls)

    def _api_key(self, model: ModelConfig) -> str | None:
        if model.model in self._keys:
            return self._keys[model.model]
        # A local server (vLLM, Ollama, llama.cpp) wants no key, but the OpenAI client insists on one.
        return "no-key" if model.api_base else None  # None: litellm's own lookup (OPENAI_API_KEY...)

    def _read_reply(self, model: ModelConfig, resp: Any, record: CallRecord) -> None:
        choices = getattr(resp, "choices", None) or []
        record.response = (choices[0].message.content if choices else None) or ""
        usage = getattr(resp, "usage", None)
        prompt_chars = sum(len(m.get("content", "")) for m in record.messages)
        # Servers that send no usage get an estimate (~4 characters a token) so token budgets still bind.
        record.tokens_in = int(getattr(usage, "prompt_tokens", 0) or 0) or prompt_chars // 4
        record.tokens_out = int(getattr(usage, "completion_tokens", 0) or 0) or len(record.response) // 4
        record.cost = self._cost(model, resp, record)
        with self._lock:
            self.spent.tokens += record.tokens_in + record.tokens_out
            self.spent.cost += record.cost or 0.0

    def _cost(self, model: ModelConfig, resp: Any, record: CallRecord) -> float | None:
        if model.price_in_per_mtok is not None or model.price_out_per_mtok is not None:
            return (
                (record.tokens_in or 0) * (model.price_in_per_mtok or 0.0)
                + (record.tokens_out or 0) * (model.price_out_per_mtok or 0.0)
            ) / 1e6
        try:  # litellm knows the prices of hosted models; it raises for custom/local ones
            return float(self._litellm.completion_cost(completion_response=resp))
        except Exception:  # noqa: BLE001
            return None

    def _retryable(self, exc: Exception, status: int | None) -> bool:
        if status is not None:
            return int(status) in RETRYABLE_STATUS or int(status) >= 500
        lit = self._litellm
        return isinstance(
            exc,
            (
                lit.Timeout,
                lit.APIConnectionError,
                lit.InternalServerError,
                lit.ServiceUnavailableError,
                lit.RateLimitError,
            ),
        )

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.cfg.backoff_s * 2**attempt, self.cfg.backoff_max_s) * random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER_S))
        return float(delay)


def _retry_after(exc: Exception) -> float | None:
    headers = getattr(exc, "litellm_response_headers", None)
    if headers is None:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
    if not headers:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # an HTTP date
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
