"""What the read commands report, as plain data built from the archive (the CLI renders it).

Everything here reads through named store queries on an archive opened read-only, and imports
nothing of the engine's loop, so a read command starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from evolve.archive import ARCHIVE, ArchiveReader, StoreError
from evolve.program import Program

if TYPE_CHECKING:
    from evolve.config import RunConfig


def open_readonly(run_dir: Path) -> ArchiveReader:
    """A run's archive, read-only (also while the run is writing it)."""
    return ArchiveReader.open(run_dir / ARCHIVE)


def run_config(store: ArchiveReader) -> RunConfig:
    from evolve.config import config_from_json  # pydantic models cost ~0.1 s to build: only where needed

    return config_from_json(store.run_info()["config_json"])


def program(store: ArchiveReader, program_id: int) -> Program:
    try:
        return store.get(program_id)
    except StoreError:
        raise StoreError(f"{store.path}: no program with id {program_id}") from None


def status_report(cfg: RunConfig, store: ArchiveReader, run_dir: Path) -> dict[str, Any]:
    """Run state, counts by status/failure/rejection/operator, islands, events, champion and LLM spend."""
    info = store.run_info()
    best = store.best()
    champion = store.champion()
    return {
        "run_dir": str(run_dir),
        "state": str(info["state"]),
        "stop_reason": info["stop_reason"],
        "problem": info["problem_name"],
        "problem_version": info["problem_version"],
        "seed": info["seed"],
        "versions": info["versions"],
        "isolation": info["isolation"],
        "evaluations": store.completed_evaluations(),
        "budget": cfg.budget.max_evaluations,
        "best": {"id": best.id, "fitness": best.fitness} if best else None,
        "champion": None if champion is None else champion.champion_summary(),
        **store.counts(),
        "islands": {i: row.__dict__ for i, row in store.island_rows().items()},
        "events": store.event_counts(),
        "operator_outcomes": store.operator_outcomes(),
        "llm": llm_report(cfg, store),
    }


def llm_report(cfg: RunConfig, store: ArchiveReader) -> dict[str, Any]:
    """Spend per model and the selector's current preferences (the bandit replayed from the archive)."""
    tokens, cost = store.llm_totals()
    out: dict[str, Any] = {
        "models": [m.model for m in cfg.llm.models],
        "selection": cfg.llm.selection,
        "spend": store.llm_spend(),
        "tokens": tokens,
        "cost": cost,
        "preferences": {},
        "bandit_scores": {},
        "insights": store.insight_count(),
    }
    if cfg.llm.models:
        from evolve.llm.selector import replayed  # only runs with models pay for it

        selector = replayed(cfg.llm, store.llm_outcomes())
        out["preferences"] = selector.preferences()
        out["bandit_scores"] = {k: (None if v == float("inf") else v) for k, v in selector.scores().items()}
    return out


def lineage_report(store: ArchiveReader, program_id: int) -> list[dict[str, Any]]:
    """The program's ancestry along first parents, seed first: operator, fitness and its change at each
    step, the other parents of a crossover, and what an LLM said it changed. One query, no recursion."""
    chain = store.lineage(program_id)[::-1]
    mates = store.fitness_of(pid for row in chain for pid in row["parent_ids"][1:])
    steps = []
    previous: float | None = None
    for row in chain:
        change = row["fitness"] - previous if row["fitness"] is not None and previous is not None else None
        steps.append(
            {
                "id": row["id"],
                "operator": row["operator"],
                "status": row["status"],
                "generation": row["generation"],
                "fitness": row["fitness"],
                "validated_fitness": row["validated_fitness"],
                "fitness_change": change,
                "parent_ids": row["parent_ids"],
                "mates": [{"id": m, "fitness": mates.get(m)} for m in row["parent_ids"][1:]],
                "llm_model": row["llm_model"],
                "summary": row["operator_info"].get("summary"),
            }
        )
        previous = row["fitness"]
    return steps
