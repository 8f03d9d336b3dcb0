"""What the read commands report, as plain data built from the archive (the CLI renders it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evolve.config import RunConfig
from evolve.llm.coordinator import replay_selector
from evolve.program import Program
from evolve.store import LineageStore, StoreError


def program(store: LineageStore, program_id: int) -> Program:
    try:
        return store.get(program_id)
    except StoreError:
        raise StoreError(f"{store.path}: no program with id {program_id}") from None


def status_report(cfg: RunConfig, store: LineageStore, run_dir: Path) -> dict[str, Any]:
    """Run state, counts by status/failure/operator, islands, events and LLM spend."""
    info = store.run_info()
    events: dict[str, int] = {}
    for ev in store.events():
        events[ev["kind"]] = events.get(ev["kind"], 0) + 1
    best = store.top(1)
    return {
        "run_dir": str(run_dir), "state": info["state"], "problem": info["problem_name"],
        "problem_version": info["problem_version"], "seed": info["seed"], "versions": info["versions"],
        "evaluations": store.completed_evaluations(), "budget": cfg.budget.max_evaluations,
        "best": {"id": best[0].id, "fitness": best[0].fitness} if best else None,
        **store.counts(), "islands": store.island_rows(), "events": events,
        "llm": llm_report(cfg, store),
    }


def llm_report(cfg: RunConfig, store: LineageStore) -> dict[str, Any]:
    """Spend per model and the selector's current preferences (the bandit replayed from the archive)."""
    selector, _ = replay_selector(cfg.llm, store)
    tokens, cost = store.llm_totals()
    return {
        "models": [m.model for m in cfg.llm.models], "selection": cfg.llm.selection, "spend": store.llm_spend(),
        "tokens": tokens, "cost": cost,
        "preferences": selector.preferences() if cfg.llm.models else {},
        "bandit_scores": {k: (None if v == float("inf") else v) for k, v in selector.scores().items()},
        "insights": len(store.insights()),
    }


def lineage_report(store: LineageStore, program_id: int) -> dict[str, Any]:
    """A program and its ancestry back to the seed: operator and fitness change at each step."""
    p = program(store, program_id)
    node: dict[str, Any] = {"id": p.id, "operator": p.operator, "fitness": p.fitness, "status": str(p.status),
                            "generation": p.generation, "parent_ids": p.parent_ids, "fitness_change": None}
    if p.parent_ids:
        first = program(store, p.parent_ids[0])
        if p.fitness is not None and first.fitness is not None:
            node["fitness_change"] = p.fitness - first.fitness
        node["parent"] = lineage_report(store, p.parent_ids[0])
        node["mates"] = [{"id": m.id, "fitness": m.fitness} for m in map(store.get, p.parent_ids[1:])]
    return node
