"""Island: one MAP-Elites archive (a pyribs GridArchive) whose solutions are program ids."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ribs.archives import AddStatus, GridArchive

from evolve.problem import Descriptor


@dataclass(frozen=True)
class Elite:
    program_id: int
    fitness: float
    cell: int


class Island:
    """A grid of elites keyed by behaviour descriptors.

    The archive stores only the program id (as a 1-d float solution); code and metrics stay in
    the lineage store. Selection uses the caller's generator so that the run's single stored RNG
    drives every random choice.
    """

    def __init__(self, index: int, descriptors: tuple[Descriptor, ...]) -> None:
        self.index = index
        self.descriptors = descriptors

        dims = [d.bins for d in descriptors] or [1]
        ranges = [(d.low, d.high) for d in descriptors] or [(0.0, 1.0)]
        self._archive = GridArchive(solution_dim=1, dims=dims, ranges=ranges, dtype=np.float64)

    def measures(self, descriptors: dict[str, float]) -> list[float]:
        if not self.descriptors:
            return [0.5]
        return [float(descriptors.get(d.name, d.low)) for d in self.descriptors]

    def add(self, program_id: int, fitness: float, descriptors: dict[str, float]) -> AddStatus:
        """Offer a program to the grid: a new cell, an improved cell, or not added."""
        info = self._archive.add_single([float(program_id)], float(fitness), self.measures(descriptors))
        return AddStatus(int(info["status"]))

    def clear(self) -> None:
        self._archive.clear()

    def elites(self) -> list[Elite]:
        if len(self._archive) == 0:
            return []
        data = self._archive.data()
        return [
            Elite(int(round(s[0])), float(o), int(i))
            for s, o, i in zip(data["solution"], data["objective"], data["index"], strict=True)
        ]

    def __len__(self) -> int:
        return len(self._archive)

    def best(self) -> Elite | None:
        elites = self.elites()
        return max(elites, key=lambda e: (e.fitness, -e.program_id)) if elites else None

    def select(self, rng: np.random.Generator, exploit_ratio: float, temperature: float) -> Elite:
        """Pick a parent: by fitness rank (exploit) or uniformly over occupied cells (explore)."""
        elites = sorted(self.elites(), key=lambda e: (-e.fitness, e.program_id))
        if not elites:
            raise LookupError(f"island {self.index} is empty")
        if rng.random() < exploit_ratio:
            ranks = np.arange(len(elites), dtype=np.float64)
            weights = np.exp(-ranks / (temperature * max(1.0, len(elites) / 4)))
            return elites[int(rng.choice(len(elites), p=weights / weights.sum()))]
        return elites[int(rng.integers(len(elites)))]

    def sample(self, rng: np.random.Generator, n: int, exclude: set[int]) -> list[Elite]:
        pool = [e for e in sorted(self.elites(), key=lambda e: e.program_id) if e.program_id not in exclude]
        if not pool or n <= 0:
            return []
        picks = rng.choice(len(pool), size=min(n, len(pool)), replace=False)
        return [pool[int(i)] for i in picks]
