"""Which model writes the next child: a weighted ensemble, or a UCB bandit that learns which pays.

The bandit's reward for a call is the child's relative fitness gain over its parent, clipped to
[0, 1] (0 for a child that was rejected or failed). Where every model has a known price, a
model's mean reward is divided by its mean cost per call relative to the cheapest model, so a
model ten times the price must gain ten times as much. The selector is a pure function of the
outcomes it is told, so replaying the archive on resume rebuilds it exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evolve.config import LLMConfig
from evolve.program import LLMOutcome


@dataclass
class Arm:
    calls: int = 0
    reward: float = 0.0
    cost: float = 0.0
    priced_calls: int = 0

    @property
    def mean_reward(self) -> float:
        return self.reward / self.calls if self.calls else 0.0

    @property
    def mean_cost(self) -> float | None:
        return self.cost / self.priced_calls if self.priced_calls else None


def improvement(child: float | None, parent: float | None) -> float:
    if child is None or parent is None:
        return 0.0
    return float(min(1.0, max(0.0, (child - parent) / max(abs(parent), 1e-9))))


def reward(outcome: LLMOutcome) -> float:
    """The selector's reward for an LLM child: its relative gain over the nearest ancestor that scored."""
    return improvement(outcome.fitness, outcome.nearest_scored_ancestor)


def replayed(cfg: LLMConfig, outcomes: list[LLMOutcome]) -> ModelSelector:
    """The selector as these outcomes (the archive's, in id order) leave it."""
    selector = ModelSelector(cfg)
    for o in outcomes:
        selector.record(o.model, reward(o), o.cost)
    return selector


class ModelSelector:
    def __init__(self, cfg: LLMConfig) -> None:
        self.cfg = cfg
        self.arms = {m.model: Arm() for m in cfg.models}

    def record(self, model: str, reward: float, cost: float | None) -> None:
        arm = self.arms.get(model)
        if arm is None:  # a model since removed from the config
            return
        arm.calls += 1
        arm.reward += reward
        if cost is not None:
            arm.cost += cost
            arm.priced_calls += 1

    def scores(self) -> dict[str, float]:
        """UCB score per model (inf for one never tried)."""
        total = sum(a.calls for a in self.arms.values())
        costs = [a.mean_cost for a in self.arms.values()]
        priced = bool(costs) and all(c is not None and c > 0 for c in costs)
        cheapest = min(c for c in costs if c is not None) if priced else 1.0
        out = {}
        for name, arm in self.arms.items():
            if arm.calls == 0:
                out[name] = math.inf
                continue
            value = arm.mean_reward / ((arm.mean_cost or cheapest) / cheapest) if priced else arm.mean_reward
            out[name] = value + self.cfg.bandit_exploration * math.sqrt(2 * math.log(max(total, 1)) / arm.calls)
        return out

    def preferences(self) -> dict[str, float]:
        """The probability of each model being chosen next (the bandit picks its best score)."""
        if self.cfg.selection == "weighted":
            total = sum(m.weight for m in self.cfg.models)
            return {m.model: m.weight / total for m in self.cfg.models}
        scores = self.scores()
        best = max(scores.values())
        winners = [n for n, s in scores.items() if s == best]
        return {n: (1.0 / len(winners) if n in winners else 0.0) for n in scores}

    def choose(self, rng: np.random.Generator, usable: list[str] | None = None) -> str:
        """The next model, among ``usable`` ones when given (the others set aside as unreachable)."""
        prefs = self.preferences()
        if usable is not None and set(usable) != set(prefs):
            rest = {n: p for n, p in prefs.items() if n in usable}
            prefs = rest if sum(rest.values()) > 0 else dict.fromkeys(rest, 1.0)
        names = list(prefs)
        p = np.array([prefs[n] for n in names])
        return names[int(rng.choice(len(names), p=p / p.sum()))]
