"""The model selector's view of a run, read from a real archive: each LLM child's outcome (typed), its
reward against the nearest ancestor that scored, the selector replayed exactly, and which failures queue
a repair."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evolve.config import LLMConfig, ModelConfig
from evolve.llm.coordinator import needs_repair
from evolve.llm.selector import ModelSelector, replayed, reward
from evolve.program import FailureKind, LLMProvenance, Program, Status
from evolve.store import LineageStore


def _llm_child(store: LineageStore, parent: int, model: str, operator: str, **kw: object) -> int:
    child = Program(
        code=f"x = {parent} + {len(model)}",
        parent_ids=[parent],
        operator=operator,
        island=0,
        generation=1,
        code_hash=f"{parent}-{model}-{operator}",
        llm=LLMProvenance(model=model, cost=0.01),
        **kw,
    )  # type: ignore[arg-type]
    return store.propose(child, [], None)


def test_outcomes_rewards_and_the_replayed_selector(tmp_path: Path) -> None:
    store = LineageStore.create(tmp_path / "archive.sqlite")
    store.init_run("{}", 0, "toy", "1", {"python": "3"})
    seed = store.add_seed(Program(code="x = 0", operator="seed", island=0, status=Status.EVALUATED, fitness=1.0))
    better = _llm_child(store, seed, "a", "llm_diff", status=Status.EVALUATED, fitness=1.5)
    broken = _llm_child(
        store, seed, "b", "llm_diff", status=Status.FAILED, failure_kind=FailureKind.CRASH, reason="NameError"
    )
    repaired = _llm_child(store, broken, "b", "llm_repair", status=Status.EVALUATED, fitness=1.2)
    _llm_child(store, seed, "a", "llm_diff", status=Status.PROPOSED)  # not finished: no outcome yet

    outcomes = {o.id: o for o in store.llm_outcomes()}
    assert sorted(outcomes) == [better, broken, repaired]
    assert outcomes[repaired].ancestor_fitness == (None, 1.0, None)
    assert outcomes[repaired].nearest_scored_ancestor == 1.0
    assert reward(outcomes[better]) == 0.5 and reward(outcomes[broken]) == 0.0
    assert abs(reward(outcomes[repaired]) - 0.2) < 1e-12  # against the seed: its own parent failed
    assert needs_repair(outcomes[broken]) and not needs_repair(outcomes[better])
    assert not needs_repair(outcomes[repaired])  # a repair is never repaired again

    cfg = LLMConfig(models=[ModelConfig(model="a"), ModelConfig(model="b")], selection="bandit")
    replay = replayed(cfg, list(outcomes.values()))
    live = ModelSelector(cfg)
    for o in outcomes.values():
        live.record(o.model, reward(o), o.cost)
    assert replay.scores() == live.scores()
    assert replay.arms["a"].calls == 1 and replay.arms["b"].calls == 2
    assert replay.choose(np.random.default_rng(0)) == live.choose(np.random.default_rng(0))
    assert store.llm_outcomes(broken) == [outcomes[broken]]


def test_a_model_set_aside_is_never_chosen_and_the_rest_keep_their_odds() -> None:
    cfg = LLMConfig(models=[ModelConfig(model=m, weight=w) for m, w in (("a", 1.0), ("b", 1.0), ("c", 2.0))])
    selector, rng = ModelSelector(cfg), np.random.default_rng(0)
    picks = [selector.choose(rng, usable=["a", "c"]) for _ in range(3000)]
    assert "b" not in picks and 0.6 < picks.count("c") / len(picks) < 0.73  # 2:1, as configured
    bandit = ModelSelector(cfg.model_copy(update={"selection": "bandit"}))
    for _ in range(20):
        bandit.record("a", 1.0, None)  # the bandit's favourite...
        bandit.record("b", 0.0, None)
        bandit.record("c", 0.0, None)
    assert bandit.choose(rng) == "a" and bandit.choose(rng, usable=["b", "c"]) in ("b", "c")  # ...set aside
