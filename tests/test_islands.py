"""Islands: placement in the MAP-Elites grid, ring migration, stagnation resets, and replay from the
event log rebuilding exactly the islands a run had."""

from __future__ import annotations

import numpy as np
from ribs.archives import AddStatus

from evolve.config import IslandsConfig
from evolve.problem import Descriptor
from evolve.program import EventKind
from evolve.store import StoredEvent
from islands.archipelago import Archipelago, IslandEvent, ProgramSummary
from islands.island import Island

DESCRIPTORS = (Descriptor("a", 0, 10, 5), Descriptor("b", 0, 1, 2))


def _p(pid: int, fitness: float, a: float = 1.0, b: float = 0.2) -> ProgramSummary:
    return ProgramSummary(pid, fitness, {"a": a, "b": b})


def test_placement_by_cell_keeps_the_fitter_program() -> None:
    island = Island(0, DESCRIPTORS)
    assert island.add(1, 0.5, {"a": 1.0, "b": 0.2}) == AddStatus.NEW
    assert island.add(2, 0.4, {"a": 1.5, "b": 0.3}) == AddStatus.NOT_ADDED  # same cell, worse
    assert island.add(3, 0.9, {"a": 1.9, "b": 0.1}) == AddStatus.IMPROVE_EXISTING
    assert island.add(4, 0.1, {"a": 9.0, "b": 0.9}) == AddStatus.NEW  # another cell
    assert island.add(5, 0.2, {"a": 99.0, "b": -5.0}) == AddStatus.NEW  # out of range: clipped to an edge cell
    assert sorted(e.program_id for e in island.elites()) == [3, 4, 5]
    assert island.best() is not None and island.best().program_id == 3  # type: ignore[union-attr]


def test_selection_follows_the_generator() -> None:
    island = Island(0, DESCRIPTORS)
    for pid, a in enumerate((0.5, 2.5, 4.5, 6.5, 8.5), start=1):
        island.add(pid, pid / 10, {"a": a, "b": 0.2})
    picks = [island.select(np.random.default_rng(7), 0.7, 1.0).program_id for _ in range(3)]
    again = [island.select(np.random.default_rng(7), 0.7, 1.0).program_id for _ in range(3)]
    assert picks == again
    greedy = [island.select(np.random.default_rng(s), 1.0, 0.01).program_id for s in range(20)]
    assert set(greedy) == {5}  # exploit with a cold softmax: always the best


def test_migration_copies_each_best_to_the_next_island_on_the_ring() -> None:
    arch = Archipelago(IslandsConfig(num_islands=3, migration_count=1), DESCRIPTORS)
    arch.seed(_p(1, 0.1))
    arch.record_result(0, _p(2, 0.5, a=5.0))
    arch.record_result(1, _p(3, 0.7, a=7.0))
    programs = {1: _p(1, 0.1), 2: _p(2, 0.5, a=5.0), 3: _p(3, 0.7, a=7.0)}
    events = arch.migrate(programs.__getitem__)
    moved = {(e.data["from_island"], e.island, e.program_id) for e in events}
    assert moved == {(0, 1, 2), (1, 2, 3)}  # island 2's best (the seed) is already on island 0
    assert all(e.kind == EventKind.MIGRATION for e in events)
    assert arch.counters[1].best_program_id == 3 and arch.counters[2].best_program_id == 3


def test_a_stagnant_island_is_reset_from_the_best_other_island() -> None:
    arch = Archipelago(IslandsConfig(num_islands=2, stagnation_evaluations=3), DESCRIPTORS)
    arch.seed(_p(1, 0.1))
    arch.record_result(1, _p(2, 0.9, a=8.0))
    for _ in range(3):
        arch.record_result(0, None)  # three failures in a row on island 0
    assert arch.stagnant() == [0]
    events = arch.reset(0, {2: _p(2, 0.9, a=8.0)}.__getitem__)
    assert [(e.kind, e.island, e.program_id) for e in events] == [(EventKind.ISLAND_RESET, 0, 2)]
    assert [e.program_id for e in arch.islands[0].elites()] == [2]
    assert arch.counters[0].since_improvement == 0 and arch.counters[0].evaluations == 3


def test_replaying_the_event_log_rebuilds_the_islands() -> None:
    cfg = IslandsConfig(num_islands=3, stagnation_evaluations=4, migration_count=2)
    live = Archipelago(cfg, DESCRIPTORS)
    rng = np.random.default_rng(3)
    log: list[IslandEvent] = list(live.seed(_p(1, 0.0)))
    programs = {1: _p(1, 0.0)}
    for pid in range(2, 80):
        island = pid % 3
        p = (
            _p(pid, float(rng.normal()), a=float(rng.uniform(0, 10)), b=float(rng.uniform()))
            if rng.random() < 0.7
            else None
        )
        if p:
            programs[pid] = p
        log += live.record_result(island, p)
        if pid % 10 == 0:
            log += live.migrate(programs.__getitem__)
        for s in live.stagnant():
            log += live.reset(s, programs.__getitem__)
    stored = [StoredEvent(i, e.kind, e.island, e.program_id, e.data, 0.0) for i, e in enumerate(log, 1)]
    replayed = Archipelago(cfg, DESCRIPTORS)
    replayed.replay(stored, {r.island: r for r in live.rows()})
    assert {EventKind.ISLAND_RESET, EventKind.MIGRATION} <= {e.kind for e in log}
    for a, b in zip(live.islands, replayed.islands, strict=True):
        assert sorted((e.program_id, e.cell) for e in a.elites()) == sorted((e.program_id, e.cell) for e in b.elites())
    assert replayed.counters == live.counters
