"""The LLM client against a real OpenAI-compatible HTTP server on 127.0.0.1, through litellm."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from openai_server import OpenAIServer, Reply, Request

from evolve.config import BudgetConfig, ConfigError, LLMConfig, ModelConfig
from evolve.llm.client import LLMCallFailed, LLMClient
from evolve.llm.prompts import PromptError, PromptLibrary
from evolve.llm.selector import ModelSelector
from evolve.secrets import redact

MESSAGES = [{"role": "user", "content": "hello " * 40}]


def client_for(url: str, budget: BudgetConfig | None = None, **model: object) -> LLMClient:
    cfg = LLMConfig(
        models=[ModelConfig(model="openai/scripted", api_base=url, timeout_s=1.0, **model)],  # type: ignore[arg-type]
        max_retries=3,
        backoff_s=0.05,
        backoff_max_s=0.2,
    )
    return LLMClient(cfg, budget or BudgetConfig())


@pytest.mark.slow
def test_retries_429_500_and_timeouts_then_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRIPTED_KEY", "sk-test-0123456789abcdef")
    script = iter(
        [
            Reply(status=429, headers={"Retry-After": "1"}),
            Reply(status=500),
            Reply("late", delay_s=2.0),
            Reply("the answer", completion_tokens=7),
        ]
    )
    with OpenAIServer(lambda r: next(script)) as server:
        client = client_for(server.url, api_key_env="SCRIPTED_KEY", price_in_per_mtok=1.0, price_out_per_mtok=2.0)
        t0 = time.monotonic()
        text, calls = client.complete("openai/scripted", MESSAGES, "llm_diff")
        elapsed = time.monotonic() - t0
    assert text == "the answer"
    assert [c.error is None for c in calls] == [False, False, False, True]
    assert "429" in calls[0].error and "500" in calls[1].error and "Timeout" in calls[2].error  # type: ignore[operator]
    assert elapsed >= 1.0 + 1.0  # honoured Retry-After: 1, then the 1 s timeout
    assert all(r.headers["authorization"] == "Bearer sk-test-0123456789abcdef" for r in server.requests)
    ok = calls[-1]
    assert ok.tokens_out == 7 and ok.tokens_in == len(MESSAGES[0]["content"]) // 4
    assert ok.cost == pytest.approx((ok.tokens_in * 1.0 + 7 * 2.0) / 1e6)
    assert client.spent.tokens == ok.tokens_in + 7


@pytest.mark.slow
def test_client_errors_are_not_retried_and_unknown_prices_stay_unknown() -> None:
    with OpenAIServer(lambda r: Reply(status=401)) as server:
        client = client_for(server.url)
        with pytest.raises(LLMCallFailed, match="401") as info:
            client.complete("openai/scripted", MESSAGES, "llm_diff")
        assert len(server.requests) == 1 and len(info.value.calls) == 1
    with OpenAIServer(lambda r: Reply("fine")) as server:
        _, calls = client_for(server.url).complete("openai/scripted", MESSAGES, "llm_diff")
    assert calls[0].cost is None  # litellm has no price for a custom model: recorded as unknown


def test_persistent_failure_gives_up_after_the_retries() -> None:
    with OpenAIServer(lambda r: Reply(status=503)) as server:
        with pytest.raises(LLMCallFailed, match="gave up after 4 attempts"):
            client_for(server.url).complete("openai/scripted", MESSAGES, "llm_diff")
        assert len(server.requests) == 4


def test_token_budget_stops_new_calls() -> None:
    with OpenAIServer(lambda r: Reply("x" * 400)) as server:
        client = client_for(server.url, BudgetConfig(max_llm_tokens=50))
        client.complete("openai/scripted", MESSAGES, "llm_diff")
        assert client.budget_spent() and "token budget" in client.budget_spent()  # type: ignore[operator]
        with pytest.raises(LLMCallFailed, match="token budget"):
            client.complete("openai/scripted", MESSAGES, "llm_diff")
        assert len(server.requests) == 1  # the refused call never left the machine


def test_cost_budget_stops_new_calls() -> None:
    with OpenAIServer(lambda r: Reply("ok", prompt_tokens=1000, completion_tokens=1000)) as server:
        client = client_for(server.url, BudgetConfig(max_llm_cost=0.004), price_in_per_mtok=1.0, price_out_per_mtok=2.0)
        client.complete("openai/scripted", MESSAGES, "llm_diff")  # $0.003
        assert client.budget_spent() is None
        client.complete("openai/scripted", MESSAGES, "llm_diff")  # $0.006 in all
        with pytest.raises(LLMCallFailed, match="cost budget"):
            client.complete("openai/scripted", MESSAGES, "llm_diff")
        assert len(server.requests) == 2 and client.spent.cost == pytest.approx(0.006)


def test_missing_key_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_KEY", raising=False)
    with pytest.raises(ConfigError, match="llm.models.0.api_key_env: environment variable NOT_SET_KEY"):
        client_for("http://127.0.0.1:9/v1", api_key_env="NOT_SET_KEY")


def test_a_hosted_model_without_its_key_is_named_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """No call is made: litellm knows which variable the provider reads, and it is not set."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cfg = LLMConfig(models=[ModelConfig(model="openai/gpt-4o"), ModelConfig(model="openai/local", api_base="http://x")])
    notes = LLMClient(cfg, BudgetConfig()).start_notes
    assert notes == [
        "llm.models.0 (openai/gpt-4o): OPENAI_API_KEY not set and no api_key_env or api_base given: its calls will fail"
    ]


def test_three_unreachable_calls_in_a_row_set_a_model_aside_and_a_success_resets_the_count() -> None:
    answers: list[int] = [401, 200, 401, 401, 404]

    def script(req: Request) -> Reply:
        status = answers.pop(0) if answers else 200
        return Reply("fine") if status == 200 else Reply(status=status)

    with OpenAIServer(script) as server:
        client = client_for(server.url)
        outcomes = []
        for _ in range(5):
            try:
                client.complete("openai/scripted", MESSAGES, "llm_diff")
                outcomes.append("ok")
            except LLMCallFailed:
                outcomes.append("failed")
    assert outcomes == ["failed", "ok", "failed", "failed", "failed"]
    assert (
        list(client.set_aside) == ["openai/scripted"]
        and "3 calls in a row failed (not_found" in client.set_aside["openai/scripted"]
    )
    assert client.usable_models() == [] and "every LLM model is unreachable" in (client.budget_spent() or "")
    notices = client.take_notices()
    assert len(notices) == 1 and "no model is left" in notices[0] and client.take_notices() == []


def test_bandit_learns_which_model_pays() -> None:
    cfg = LLMConfig(models=[ModelConfig(model="a"), ModelConfig(model="b")], selection="bandit", bandit_exploration=0.1)
    sel = ModelSelector(cfg)
    assert sel.preferences() == {"a": 0.5, "b": 0.5}  # both untried
    rng = np.random.default_rng(0)
    for _ in range(40):
        m = sel.choose(rng)
        sel.record(m, 0.5 if m == "b" else 0.0, None)
    assert sel.preferences()["b"] == 1.0 and sel.arms["b"].calls > 30
    # With prices, a model ten times dearer must gain ten times as much.
    priced = ModelSelector(
        LLMConfig(
            models=[ModelConfig(model="cheap"), ModelConfig(model="dear")], selection="bandit", bandit_exploration=0.0
        )
    )
    for _ in range(10):
        priced.record("cheap", 0.1, 0.001)
        priced.record("dear", 0.5, 0.01)
    assert priced.preferences() == {"cheap": 1.0, "dear": 0.0}
    weighted = ModelSelector(LLMConfig(models=[ModelConfig(model="a", weight=3), ModelConfig(model="b")]))
    assert weighted.preferences() == {"a": 0.75, "b": 0.25}


def test_prompt_templates_are_overridable_files(tmp_path: Path) -> None:
    (tmp_path / "diff.md").write_text("Only this: {{parent}}")
    lib = PromptLibrary(str(tmp_path))
    assert lib.render("diff", {"parent": "P"}) == "Only this: P\n"
    blanks = {k: "" for k in ("parent", "history", "inspirations", "insights")}
    assert "SEARCH" in PromptLibrary().render("diff", blanks)
    (tmp_path / "repair.md").write_text("{{no_such_thing}}")
    with pytest.raises(PromptError, match=r"repair.md: unknown placeholder \{\{no_such_thing\}\}"):
        PromptLibrary(str(tmp_path)).render("repair", {"parent": "", "failure": ""})


def test_redaction() -> None:
    text = "key=hunter2hunter2 tok=sk-proj-abcdefghijklmnop Authorization: Bearer abcdefghijklmnopq"
    out = redact(text, ["hunter2hunter2"])
    assert "hunter2" not in out and "sk-proj" not in out and "abcdefghijklmnopq" not in out


def _unused(r: Request) -> Reply:  # keeps the Request import honest for type checkers
    return Reply()
