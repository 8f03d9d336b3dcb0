"""Archipelago: the islands, their counters, ring migration and stagnation resets.

Every change to an island is returned as an :class:`IslandEvent` for the controller to store;
:meth:`Archipelago.replay` applies stored events to rebuild the islands on resume.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ribs.archives import AddStatus

from evolve.config import IslandsConfig
from evolve.problem import Descriptor
from evolve.program import EventKind
from evolve.store import IslandRow, StoredEvent
from islands.island import Elite, Island


@dataclass
class IslandEvent:
    kind: EventKind
    island: int
    program_id: int | None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class IslandCounters:
    evaluations: int = 0
    since_improvement: int = 0
    best_fitness: float | None = None
    best_program_id: int | None = None


@dataclass
class ProgramSummary:
    """What an island needs to know about a program: enough to place it in the grid."""

    id: int
    fitness: float
    descriptors: dict[str, float]


class Archipelago:
    def __init__(self, config: IslandsConfig, descriptors: tuple[Descriptor, ...]) -> None:
        self.config = config
        self.islands = [Island(i, descriptors) for i in range(config.num_islands)]
        self.counters = [IslandCounters() for _ in self.islands]

    # -- adding --------------------------------------------------------------------------------
    def _offer(
        self, island: int, p: ProgramSummary, kind_on_add: EventKind | None, data: dict[str, Any]
    ) -> IslandEvent | None:
        status = self.islands[island].add(p.id, p.fitness, p.descriptors)
        if status == AddStatus.NOT_ADDED:
            return None
        outcome = "new" if status == AddStatus.NEW else "improved"
        kind = kind_on_add or (EventKind.ELITE_ADDED if status == AddStatus.NEW else EventKind.ELITE_REPLACED)
        return IslandEvent(
            kind, island, p.id, {**data, "outcome": outcome, "fitness": p.fitness, "descriptors": p.descriptors}
        )

    def seed(self, p: ProgramSummary) -> list[IslandEvent]:
        events = []
        for i in range(len(self.islands)):
            ev = self._offer(i, p, None, {"seed": True})
            if ev:
                events.append(ev)
            self._improve(i, p)
        return events

    def record_result(self, island: int, p: ProgramSummary | None) -> list[IslandEvent]:
        """Count one finished evaluation on ``island``; offer the program if it has a fitness."""
        c = self.counters[island]
        c.evaluations += 1
        events: list[IslandEvent] = []
        if p is not None:
            ev = self._offer(island, p, None, {})
            if ev:
                events.append(ev)
            if self._improve(island, p):
                return events
        c.since_improvement += 1
        return events

    def _improve(self, island: int, p: ProgramSummary) -> bool:
        c = self.counters[island]
        if c.best_fitness is None or p.fitness > c.best_fitness:
            c.best_fitness, c.best_program_id, c.since_improvement = p.fitness, p.id, 0
            return True
        return False

    # -- migration and resets -----------------------------------------------------------------
    def migrate(self, lookup: Callable[[int], ProgramSummary]) -> list[IslandEvent]:
        """Copy each island's best elites to the next island on the ring."""
        n = len(self.islands)
        if n < 2:
            return []
        movers: list[tuple[int, int, Elite]] = []
        for i, island in enumerate(self.islands):
            best = sorted(island.elites(), key=lambda e: (-e.fitness, e.program_id))[: self.config.migration_count]
            movers.extend((i, (i + 1) % n, e) for e in best)
        events = []
        for src, dst, elite in movers:
            p = lookup(elite.program_id)
            ev = self._offer(dst, p, EventKind.MIGRATION, {"from_island": src})
            if ev:
                events.append(ev)
                self._improve(dst, p)
        return events

    def stagnant(self) -> list[int]:
        if len(self.islands) < 2:
            return []
        return [i for i, c in enumerate(self.counters) if c.since_improvement >= self.config.stagnation_evaluations]

    def reset(self, island: int, lookup: Callable[[int], ProgramSummary]) -> list[IslandEvent]:
        """Empty a stagnant island and reseed it with the best program of the best other island."""
        donors = [
            (c.best_fitness, j) for j, c in enumerate(self.counters) if j != island and c.best_fitness is not None
        ]
        if not donors:
            return []
        _, donor = max(donors)
        best = self.islands[donor].best()
        if best is None:
            return []
        self.islands[island].clear()
        self.counters[island] = IslandCounters(evaluations=self.counters[island].evaluations)
        p = lookup(best.program_id)
        self.islands[island].add(p.id, p.fitness, p.descriptors)
        self._improve(island, p)
        return [
            IslandEvent(
                EventKind.ISLAND_RESET,
                island,
                p.id,
                {"donor_island": donor, "fitness": p.fitness, "descriptors": p.descriptors},
            )
        ]

    # -- resume -------------------------------------------------------------------------------
    def replay(self, events: list[StoredEvent], counters: dict[int, IslandRow]) -> None:
        """Rebuild archives from stored events (in seq order) and counters from stored rows."""
        for ev in events:
            self.apply(ev)
        for i, row in counters.items():
            if i < len(self.counters):
                self.counters[i] = IslandCounters(
                    row.evaluations, row.since_improvement, row.best_fitness, row.best_program_id
                )

    def apply(self, ev: StoredEvent) -> None:
        """Replay one stored event on its island's grid (what the event log says happened)."""
        island = self.islands[ev.island]
        if ev.kind == EventKind.ISLAND_RESET:
            island.clear()
        if ev.program_id is not None:
            island.add(ev.program_id, ev.data["fitness"], ev.data["descriptors"])

    def rows(self) -> list[IslandRow]:
        """The counters as the store keeps them."""
        return [
            IslandRow(i, c.evaluations, c.since_improvement, c.best_fitness, c.best_program_id)
            for i, c in enumerate(self.counters)
        ]

    # -- reading ------------------------------------------------------------------------------
    def select(self, island: int, rng: np.random.Generator) -> Elite:
        s = self.config.selection
        return self.islands[island].select(rng, s.exploit_ratio, s.temperature)

    def inspirations(self, island: int, rng: np.random.Generator, exclude: set[int]) -> list[Elite]:
        """Other elites of this island plus the best of a different island, for operator context."""
        n = self.config.selection.num_inspirations
        picks = self.islands[island].sample(rng, max(0, n - 1), exclude)
        others = [i for i in range(len(self.islands)) if i != island]
        if n > 0 and others:
            other_best = self.islands[others[int(rng.integers(len(others)))]].best()
            if other_best and other_best.program_id not in exclude | {e.program_id for e in picks}:
                picks.append(other_best)
        return picks
