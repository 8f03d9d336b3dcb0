"""LLM operators: diff, rewrite, crossover and repair, all through one prompt -> call -> apply path.

They run in the controller's worker threads (``blocking = True``) and touch nothing shared but
the client, so model latency overlaps evaluation. Everything the prompt needs from the archive
(parents, inspirations, ancestors, the latest insight) is gathered by the controller beforehand.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evolve.config import LLMConfig
from evolve.llm.client import CallRecord, LLMCallFailed, LLMClient
from evolve.llm.diff import DiffError, apply_diff, apply_rewrite, explanation, parse_diff
from evolve.llm.prompts import (
    PromptLibrary,
    history_section,
    insights_section,
    inspirations_section,
    program_section,
    tried_section,
    truncate,
)
from evolve.mutation.base import OperatorContext, OperatorFailed, Proposal
from evolve.problem import Problem
from evolve.program import LLMProvenance, Program
from evolve.secrets import redact


@dataclass
class LLMTools:
    client: LLMClient
    prompts: PromptLibrary
    cfg: LLMConfig
    secrets: list[str]  # values redacted from everything that goes into a prompt or the archive


def system_prompt(tools: LLMTools, problem: Problem) -> str:
    return tools.prompts.render(
        "system",
        {
            "problem_name": problem.name,
            "problem_description": problem.description.strip(),
            "allowed_imports": ", ".join(sorted(problem.allowed_imports)) or "none",
        },
    )


def _user_prompt(template: str, tools: LLMTools, parents: list[Program], ctx: OperatorContext) -> str:
    n = tools.cfg.feedback_chars
    parent = parents[0]
    values = {
        "parent": program_section("Current program", parent, n, tools.secrets),
        "history": history_section(parent, ctx.ancestors) + tried_section(parent, ctx.tried),
        "inspirations": inspirations_section(ctx.inspirations),
        "insights": insights_section(ctx.insight),
    }
    if template == "crossover":
        values["parents"] = "\n".join(
            program_section(f"Parent {i + 1}", p, n, tools.secrets) for i, p in enumerate(parents)
        )
    if template == "repair":
        failure = f"{parent.failure_kind or parent.status}: {parent.reason or ''}\n{parent.output or ''}".strip()
        values["failure"] = "```\n" + redact(truncate(failure, max(n, 200)), tools.secrets) + "\n```"
        values["parent"] = program_section("The failed program", parent, 0, tools.secrets)
    return tools.prompts.render(template, values)


def _provenance(
    model: str, messages: list[dict[str, str]], calls: list[CallRecord], reply: str | None, secrets: list[str]
) -> LLMProvenance:
    """The prompt and reply of the answered attempt, totals over attempts."""
    costs = [c.cost for c in calls if c.cost is not None]
    return LLMProvenance(
        model=model,
        prompt=json.dumps(messages),
        response=redact(reply, secrets) if reply else reply,
        tokens_in=sum(c.tokens_in or 0 for c in calls),
        tokens_out=sum(c.tokens_out or 0 for c in calls),
        cost=sum(costs) if costs else None,
        latency_s=sum(c.latency_s for c in calls),
    )


class LLMOperator:
    blocking = True

    def __init__(
        self, name: str, template: str, num_parents: int, apply: Callable[[str, str], str], tools: LLMTools
    ) -> None:
        self.name, self.template, self.num_parents = name, template, num_parents
        self._apply, self.tools = apply, tools

    def propose(self, parents: list[Program], ctx: OperatorContext) -> Proposal:
        assert ctx.model is not None, "the controller picks the model"
        messages = [
            {"role": "system", "content": system_prompt(self.tools, ctx.problem)},
            {"role": "user", "content": _user_prompt(self.template, self.tools, parents, ctx)},
        ]
        info: dict[str, Any] = {"model": ctx.model}
        try:
            reply, calls = self.tools.client.complete(ctx.model, messages, self.name)
        except LLMCallFailed as exc:
            raise OperatorFailed(
                f"{self.name}: LLM call failed: {exc}",
                _provenance(ctx.model, messages, exc.calls, None, self.tools.secrets),
                exc.calls,
                info,
            ) from None
        llm = _provenance(ctx.model, messages, calls, reply, self.tools.secrets)
        info["summary"] = explanation(reply)
        if not reply.strip():
            raise OperatorFailed(f"{self.name}: empty reply", llm, calls, info)
        try:
            code = self._apply(parents[0].code, reply)
        except DiffError as exc:
            raise OperatorFailed(f"{self.name}: {exc}", llm, calls, info) from None
        return Proposal(code, info, llm, calls)


def _diff(code: str, reply: str) -> str:
    return apply_diff(code, parse_diff(reply))


# Every LLM operator, once: (prompt template, parents, how its reply becomes a child). The repair
# operator is not drawn by weight: a failed LLM child is sent back to it once (llm.repair).
LLM_SHAPES: dict[str, tuple[str, int, Callable[[str, str], str]]] = {
    "llm_diff": ("diff", 1, _diff),
    "llm_rewrite": ("rewrite", 1, apply_rewrite),
    "llm_crossover": ("crossover", 2, apply_rewrite),
    "llm_repair": ("repair", 1, apply_rewrite),
}
REPAIR = "llm_repair"
LLM_OPERATORS = tuple(n for n in LLM_SHAPES if n != REPAIR)  # the ones operators.weights may name


def llm_operator(name: str, tools: LLMTools) -> LLMOperator:
    template, parents, apply = LLM_SHAPES[name]
    return LLMOperator(name, template, parents, apply, tools)
