"""The recorder on its own (a real archive and archipelago, function_min's descriptors; results written by
hand in place of a backend's): what each kind of finished job does to the store and the islands."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluators.jobs import EvalResult, JobKind
from evolve.config import load_config
from evolve.errors import RunError
from evolve.hashing import code_hash
from evolve.loader import builtin_problems, load_problem_folder
from evolve.program import FailureKind, Program, RejectionKind, Status
from evolve.recorder import Recorder
from evolve.runner import create_run
from evolve.store import LineageStore
from islands.archipelago import Archipelago

PROBLEM = load_problem_folder(builtin_problems()["function_min"], {})
CELL = {d.name: d.low for d in PROBLEM.descriptors}


def _recorder(tmp_path: Path, islands: int = 2) -> tuple[Recorder, LineageStore]:
    cfg = load_config(None, [f"islands.num_islands={islands}"])
    store = create_run(cfg, tmp_path / "run")
    store.add_seed(Program(code="seed", operator="seed", island=0, status=Status.EVALUATING, code_hash="s"))
    return Recorder(cfg.islands, store, Archipelago(cfg.islands, PROBLEM.descriptors)), store


def _child(store: LineageStore, code: str) -> int:
    child = Program(code=code, parent_ids=[1], operator="ast_mutate", island=1, status=Status.EVALUATING)
    child.code_hash = code_hash(code)
    return store.propose(child, [], None)


def _scored(pid: int, fitness: float) -> EvalResult:
    return EvalResult(pid, ok=True, fitness=fitness, descriptors=CELL, stage_reached="search")


def test_the_seed_lands_on_every_island_and_costs_no_budget(tmp_path: Path) -> None:
    recorder, store = _recorder(tmp_path)
    told = recorder.tell(_scored(1, 0.5))
    assert not told.evaluated and told.improved_islands == [0, 1]
    assert {i: r.best_program_id for i, r in store.island_rows().items()} == {0: 1, 1: 1}
    assert store.completed_evaluations() == 0 and store.get(1).status == Status.EVALUATED


def test_a_failing_seed_ends_the_run_with_its_reason(tmp_path: Path) -> None:
    recorder, store = _recorder(tmp_path)
    with pytest.raises(RunError, match=r"seed program \(id 1\) failed \(crash\): boom"):
        recorder.tell(EvalResult(1, ok=False, failure_kind=FailureKind.CRASH, reason="boom"))
    assert store.get(1).status == Status.FAILED  # stored before the run stops


def test_a_fingerprint_sends_the_child_to_training_or_unmasks_a_duplicate(tmp_path: Path) -> None:
    recorder, store = _recorder(tmp_path)
    recorder.tell(_scored(1, 0.5))
    first, second = _child(store, "a = 1"), _child(store, "a = 2")
    told = recorder.tell(EvalResult(first, ok=True, kind=JobKind.FINGERPRINT, fingerprint="fp"))
    assert told.next_job is not None and (told.next_job.kind, told.next_job.program_id) == (JobKind.SEARCH, first)
    told = recorder.tell(EvalResult(second, ok=True, kind=JobKind.FINGERPRINT, fingerprint="fp"))
    assert told.duplicate_of == first and told.next_job is None
    dup = store.get(second)
    assert (dup.status, dup.rejection, dup.duplicate_of) == (Status.REJECTED, RejectionKind.DUPLICATE_BEHAVIOUR, first)


def test_a_search_result_counts_once_and_places_the_child_on_its_island(tmp_path: Path) -> None:
    recorder, store = _recorder(tmp_path)
    recorder.tell(_scored(1, 0.5))
    better, broken = _child(store, "a = 1"), _child(store, "a = 2")
    told = recorder.tell(_scored(better, 0.9))
    assert told.evaluated and told.improved_islands == [1]  # its own island only
    assert store.island_rows()[1].best_program_id == better and store.island_rows()[0].best_program_id == 1
    told = recorder.tell(EvalResult(broken, ok=False, failure_kind=FailureKind.NAN, reason="nan loss"))
    assert told.evaluated and store.get(broken).status == Status.FAILED and store.get(broken).fitness is None
    assert recorder.tell(_scored(better, 0.1)).program is None  # delivered twice (a retry): ignored
    assert store.get(better).fitness == 0.9 and store.completed_evaluations() == recorder.evaluations == 2


def test_a_validation_is_attached_without_touching_the_search_fitness(tmp_path: Path) -> None:
    recorder, store = _recorder(tmp_path)
    recorder.tell(_scored(1, 0.5))
    told = recorder.tell(EvalResult(1, ok=True, kind=JobKind.VALIDATE, fitness=0.7, metrics={"validate": {}}))
    assert told.program is not None and (told.program.fitness, told.program.validated_fitness) == (0.5, 0.7)
    recorder.tell(EvalResult(1, ok=False, kind=JobKind.HELDOUT, failure_kind=FailureKind.TIMEOUT, reason="slow"))
    assert store.get(1).metrics["heldout"]["failure_kind"] == "timeout" and store.get(1).heldout_fitness is None
