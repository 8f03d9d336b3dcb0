"""Insights: every K evaluations an LLM summarises what has worked and failed into a short note.

The note is stored in the archive (``insights`` table) and carried by later prompts: the run's
memory across lineages (AlphaEvolve's meta-prompt, ShinkaEvolve's scratchpad). The prompt is
built from the archive on the controller's thread; the call runs in a worker thread.
"""

from __future__ import annotations

from evolve.llm.client import CallRecord
from evolve.llm.operators import LLMTools, system_prompt
from evolve.llm.prompts import fitness_text, metrics_summary, truncate, what_changed
from evolve.problem import Problem
from evolve.program import Program, Status
from evolve.secrets import redact
from evolve.store import LineageStore

RECENT = 30


def insight_messages(store: LineageStore, tools: LLMTools, problem: Problem) -> list[dict[str, str]]:
    previous = store.latest_insight()
    best = store.top(5)
    recent = store.recent_finished(RECENT)
    fitness = store.fitness_of(p.parent_ids[0] for p in recent if p.parent_ids)

    def parent_fitness(p: Program) -> float | None:
        return fitness.get(p.parent_ids[0]) if p.parent_ids else None

    lines = []
    for p in reversed(recent):
        pf, delta = parent_fitness(p), ""
        if pf is not None and p.fitness is not None:
            delta = f" ({p.fitness - pf:+.4f})"
        lines.append(f"- {p.operator}: {fitness_text(p)}{delta}; {what_changed(p)}")
    failures = [
        f"- {p.operator} ({p.failure_kind or 'rejected'}): "
        + redact(truncate(" ".join((p.reason or "").split()), 200), tools.secrets)
        for p in recent
        if p.status in (Status.FAILED, Status.REJECTED) and not p.duplicate_of
    ][:10]
    best_text = "\n".join(
        f"## program {p.id}, fitness {fitness_text(p)}; {metrics_summary(p.metrics, 300)}\n"
        f"```python\n{p.code.rstrip()}\n```"
        for p in best[:3]
    )
    user = tools.prompts.render(
        "insights",
        {
            "previous_insights": f"# Your previous note\n{previous}\n" if previous else "",
            "best": best_text or "(none yet)",
            "recent": "\n".join(lines) or "(none yet)",
            "failures": "\n".join(failures) or "(none)",
        },
    )
    return [{"role": "system", "content": system_prompt(tools, problem)}, {"role": "user", "content": user}]


def write_insight(tools: LLMTools, model: str, messages: list[dict[str, str]]) -> tuple[str, list[CallRecord]]:
    """The note text (empty when the call failed or said nothing) and the call's attempts."""
    from evolve.llm.client import LLMCallFailed

    try:
        text, calls = tools.client.complete(model, messages, "insights")
    except LLMCallFailed as exc:
        return "", exc.calls
    return redact(truncate(text.strip(), 3000), tools.secrets), calls
