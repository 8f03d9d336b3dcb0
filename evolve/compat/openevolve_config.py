"""An OpenEvolve ``config.yaml`` read as defaults for evolve's config.

What has a counterpart is mapped (the evaluation budget, seed, islands and migration, parallel
evaluations, the LLM models and their weights, diff- or rewrite-based evolution); the cascade
settings and the system message are the problem's (evolve.compat.openevolve); everything else is
listed once when the run starts, never silently dropped. evolve's own YAML and ``--set`` win over
anything read here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evolve.compat.openevolve import is_openevolve_folder, read_config

# Read by the problem itself (evolve.compat.openevolve): not config of evolve's, not unmapped either.
PROBLEM_KEYS = {
    "evaluator.cascade_evaluation",
    "evaluator.cascade_thresholds",
    "evaluator.timeout",
    "prompt.system_message",
}


def _leaves(data: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and k != "models":
            out += _leaves(v, key + ".")
        else:
            out.append(key)
    return out


def _model(entry: dict[str, Any], llm: dict[str, Any], used: set[str], where: str) -> dict[str, Any] | None:
    name = entry.get("name")
    if not name:
        return None
    model: dict[str, Any] = {"model": name if "/" in str(name) else f"openai/{name}"}
    for ours, theirs in (
        ("weight", "weight"),
        ("temperature", "temperature"),
        ("max_tokens", "max_tokens"),
        ("timeout_s", "timeout"),
        ("api_base", "api_base"),
    ):
        value = entry.get(theirs, llm.get(theirs))
        if value is not None:
            model[ours] = value
            used.add(f"{where}.{theirs}" if theirs in entry else f"llm.{theirs}")
    key = entry.get("api_key", llm.get("api_key"))
    if isinstance(key, str) and key.startswith("${") and key.endswith("}"):
        model["api_key_env"] = key[2:-1]  # OpenEvolve's "${VAR}": the key stays in the environment
        used.add(f"{where}.api_key" if "api_key" in entry else "llm.api_key")
    return model


def evolve_defaults(folder: Path) -> tuple[dict[str, Any], list[str]]:
    """(raw evolve config values, OpenEvolve keys with no counterpart) for a folder's config.yaml."""
    if not is_openevolve_folder(folder):
        return {}, []
    oe = read_config(folder)
    if not oe:
        return {}, []
    out: dict[str, Any] = {}
    used = set(PROBLEM_KEYS)

    def put(path: str, value: Any, source: str) -> None:
        node = out
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
        used.add(source)

    if isinstance(oe.get("max_iterations"), int):
        put("budget.max_evaluations", oe["max_iterations"], "max_iterations")
    if isinstance(oe.get("random_seed"), int):
        put("seed", oe["random_seed"], "random_seed")
    db = oe.get("database") or {}
    islands = db.get("num_islands")
    if isinstance(islands, int):
        put("islands.num_islands", islands, "database.num_islands")
    if isinstance(db.get("migration_interval"), int):
        # OpenEvolve counts per-island generations: about num_islands evaluations each.
        put("islands.migration_interval", db["migration_interval"] * (islands or 5), "database.migration_interval")
    if isinstance(db.get("migration_rate"), (int, float)):
        per_island = (db.get("population_size") or 1000) / (islands or 5)
        put("islands.migration_count", max(1, int(db["migration_rate"] * per_island)), "database.migration_rate")
        used.add("database.population_size")
    if isinstance(db.get("exploitation_ratio"), (int, float)):
        put("islands.selection.exploit_ratio", db["exploitation_ratio"], "database.exploitation_ratio")
    evaluator = oe.get("evaluator") or {}
    if isinstance(evaluator.get("parallel_evaluations"), int):
        put("controller.max_in_flight", evaluator["parallel_evaluations"], "evaluator.parallel_evaluations")
    prompt = oe.get("prompt") or {}
    if isinstance(prompt.get("num_top_programs"), int):
        put("islands.selection.num_inspirations", prompt["num_top_programs"], "prompt.num_top_programs")
    if isinstance(oe.get("diff_based_evolution"), bool):
        weights = (
            {"llm_diff": 3.0, "llm_rewrite": 1.0}
            if oe["diff_based_evolution"]
            else {"llm_diff": 0.0, "llm_rewrite": 1.0}
        )
        put(
            "operators.weights",
            {"ast_mutate": 0.8, "ast_crossover": 0.2, **weights, "llm_crossover": 1.0},
            "diff_based_evolution",
        )
    llm = oe.get("llm") or {}
    entries = [(m, f"llm.models[{i}]") for i, m in enumerate(llm.get("models") or []) if isinstance(m, dict)]
    for role, default in (("primary", 1.0), ("secondary", 0.2)):
        if llm.get(f"{role}_model"):
            weight = llm.get(f"{role}_model_weight", default)
            used.update({f"llm.{role}_model", f"llm.{role}_model_weight"})
            if weight and weight > 0:
                entries.append(({"name": llm[f"{role}_model"], "weight": weight}, f"llm.{role}_model"))
    models = [m for m in (_model(e, llm, used, where) for e, where in entries) if m]
    if models:
        put("llm.models", models, "llm.models")
    if isinstance(llm.get("retries"), int):
        put("llm.max_retries", llm["retries"], "llm.retries")
    if isinstance(llm.get("retry_delay"), (int, float)):
        put("llm.backoff_s", llm["retry_delay"], "llm.retry_delay")
    unmapped = [k for k in _leaves(oe) if k not in used and not (k == "llm.models" and models)]
    return out, unmapped
