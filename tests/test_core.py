"""The ask/tell core (controller, proposer, recorder) on a real archive with the instant fake backend:
budgets, behaviour dedup, the validation funnel, failures and resume."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from fakes import InstantBackend, behaviour

from evolve.archive import ArchiveReader
from evolve.config import load_config
from evolve.controller import Controller
from evolve.errors import RunError
from evolve.loader import builtin_problems, load_problem_folder
from evolve.problem import Problem, Stage
from evolve.program import RejectionKind, RunState, Status
from evolve.runner import create_run
from evolve.store import LineageStore
from islands.archipelago import Archipelago


def _problem(validate: bool = False) -> Problem:
    problem = copy.copy(load_problem_folder(builtin_problems()["function_min"], {}))
    if validate:
        problem.validate = Stage("validate")
    return problem


def _run(
    tmp_path: Path, *overrides: str, problem: Problem | None = None, backend: InstantBackend | None = None
) -> tuple[Controller, LineageStore]:
    cfg = load_config(None, list(overrides))
    store = create_run(cfg, tmp_path / "run")
    ctl = Controller(cfg, store, problem or _problem(), backend or InstantBackend())
    ctl.run()
    return ctl, store


@pytest.mark.slow
def test_the_budget_is_met_and_the_event_log_replays_the_islands(tmp_path: Path) -> None:
    ctl, store = _run(
        tmp_path,
        "budget.max_evaluations=300",
        "islands.migration_interval=20",
        "islands.stagnation_evaluations=30",
        "controller.max_in_flight=3",
        backend=InstantBackend(fail_every=7),
    )
    assert store.completed_evaluations() == 300 == ctl.progress.evaluations
    assert store.run_info()["state"] == RunState.FINISHED
    counts = store.counts()
    assert counts["by_status"].get("failed", 0) > 0 and "proposed" not in counts["by_status"]
    replayed = Archipelago(ctl.cfg.islands, ctl.problem.descriptors)
    replayed.replay(store.events(), store.island_rows())
    for a, b in zip(ctl.archipelago.islands, replayed.islands, strict=True):
        assert sorted(e.program_id for e in a.elites()) == sorted(e.program_id for e in b.elites())
    assert {e.kind for e in store.events()} >= {"elite_added", "migration", "island_reset"}
    assert store.load_rng_state() == ctl.rng.bit_generator.state


def test_children_that_fail_before_training_are_stored_but_spend_no_budget(tmp_path: Path) -> None:
    """budget.max_evaluations counts trainings: a child that fails its behaviour probe is stored and shown
    as a failure, and the run still trains as many children as the budget says."""
    ctl, store = _run(tmp_path, "budget.max_evaluations=60", backend=InstantBackend(probe_fail_every=3))
    programs = store.get_many(range(2, 10_000))
    before = [p for p in programs if p.status == Status.FAILED and p.stage_reached == "fingerprint"]
    trained = [p for p in programs if p.status in (Status.EVALUATED, Status.FAILED) and p not in before]
    assert len(before) > 5 and len(trained) == 60
    assert store.completed_evaluations() == 60 == ctl.progress.evaluations
    assert ctl.progress.failures["crash"] == len(before)  # shown
    outcomes = store.operator_outcomes()  # and counted against the operator that made them
    assert sum(o["failed_before_training"] for o in outcomes.values()) == len(before)
    assert sum(o["trained"] for o in outcomes.values()) == 60
    for o in outcomes.values():
        assert o["written"] == o["refused"] + o["duplicates"] + o["failed_before_training"] + o["trained"]
        assert 0 <= o["improved"] <= o["trained"]
    assert store.run_info()["state"] == RunState.FINISHED


def test_a_search_that_only_makes_garbage_stops_at_max_proposals(tmp_path: Path) -> None:
    ctl, store = _run(
        tmp_path,
        "budget.max_evaluations=50",
        "budget.max_proposals=40",
        backend=InstantBackend(probe_fail_every=1),
    )
    assert store.completed_evaluations() == 0
    assert len(store.get_many(range(2, 10_000))) == 40
    info = store.run_info()
    assert info["state"] == RunState.FINISHED and "max_proposals" in (info["stop_reason"] or ""), info


def test_behaviour_duplicates_are_rejected_before_training(tmp_path: Path) -> None:
    backend = InstantBackend()
    _, store = _run(tmp_path, "budget.max_evaluations=150", backend=backend)
    programs = store.get_many(range(1, 10_000))
    dups = [p for p in programs if p.rejection == RejectionKind.DUPLICATE_BEHAVIOUR]
    assert dups, "constant-only mutations behave like their parent under the fake fingerprint"
    trained = {p.id: p for p in programs if p.status in (Status.EVALUATED, Status.FAILED)}
    for d in dups:
        original = store.get(d.duplicate_of or 0)
        assert original.status != Status.REJECTED and original.fingerprint == d.fingerprint == behaviour(d.code)
        assert "behaves like program" in (d.reason or "")
    fingerprints = [p.fingerprint for p in trained.values()]
    assert len(fingerprints) == len(set(fingerprints)), "two trained programs share a behaviour"
    searched = {j.program_id for j in backend.submitted if j.kind == "search"}
    assert searched.isdisjoint(d.id for d in dups)  # a duplicate costs no training
    assert store.completed_evaluations() == 150  # and no budget


def test_the_funnel_validates_island_bests_and_the_top_k_and_crowns_a_champion(tmp_path: Path) -> None:
    backend = InstantBackend()
    ctl, store = _run(
        tmp_path, "budget.max_evaluations=120", "validation.top_k=4", problem=_problem(validate=True), backend=backend
    )
    validated = [j.program_id for j in backend.submitted if j.kind == "validate"]
    assert len(validated) == len(set(validated)), "a program is validated once"
    top4 = [p.id for p in store.top(4, by="search")]
    assert set(top4) <= set(validated)
    bests = {row.best_program_id for row in store.island_rows().values()}
    assert bests <= set(validated)
    champion = store.champion()
    assert champion is not None and champion.validated_fitness is not None
    assert champion.validated_fitness == max(store.get(i).validated_fitness or -1e9 for i in validated)
    assert ctl.progress.champion_id == champion.id
    assert all(store.get(i).fitness is not None for i in validated)


def test_island_bests_are_not_validated_when_switched_off(tmp_path: Path) -> None:
    backend = InstantBackend()
    _run(
        tmp_path,
        "budget.max_evaluations=60",
        "validation.island_bests=false",
        "validation.top_k=2",
        problem=_problem(validate=True),
        backend=backend,
    )
    assert len([j for j in backend.submitted if j.kind == "validate"]) == 2


def test_a_failing_seed_ends_the_run_as_failed(tmp_path: Path) -> None:
    class Broken(InstantBackend):
        def submit(self, job):  # type: ignore[no-untyped-def]
            super().submit(job)
            if job.kind == "search":
                self.done[-1].ok, self.done[-1].fitness, self.done[-1].reason = False, None, "boom"

    with pytest.raises(RunError, match="seed program"):
        _run(tmp_path, "budget.max_evaluations=5", backend=Broken())
    store = ArchiveReader.open(tmp_path / "run" / "archive.sqlite")
    info = store.run_info()
    assert info["state"] == RunState.FAILED and "seed program" in info["stop_reason"]


def test_a_stopped_run_resumes_to_a_raised_budget(tmp_path: Path) -> None:
    ctl, store = _run(tmp_path, "budget.max_evaluations=40", backend=InstantBackend(probe_fail_every=4))
    first = store.completed_evaluations()
    cfg = ctl.cfg.model_copy(deep=True)
    cfg.budget.max_evaluations = 90
    again = Controller(cfg, store, _problem(), InstantBackend(probe_fail_every=4))
    assert again.progress.evaluations == first == 40  # rebuilt from the archive: probe failures not in it
    assert again.submitted == 40 and again.proposed == store.proposed_children() > 40
    again.run()
    assert store.completed_evaluations() == 90 and store.run_info()["state"] == RunState.FINISHED
    assert len(store.get_many(range(1, 10_000))) == len({p.id for p in store.get_many(range(1, 10_000))})


def test_stop_requested_leaves_the_run_interrupted(tmp_path: Path) -> None:
    cfg = load_config(None, ["budget.max_evaluations=500"])
    store = create_run(cfg, tmp_path / "run")
    calls = []

    def stop_after_some(progress: object) -> None:
        calls.append(1)
        if len(calls) == 30:
            ctl.stop_requested = True

    ctl = Controller(cfg, store, _problem(), InstantBackend(), on_progress=stop_after_some)
    ctl.run()
    assert store.run_info()["state"] == RunState.INTERRUPTED
    assert 0 < store.completed_evaluations() < 500
    assert all(p.status != Status.EVALUATING for p in store.pending())
