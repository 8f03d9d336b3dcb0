"""The polish operator (evolve.mutation.polish): CMA-ES over a program's constants, each trial a child."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest
from conftest import run_cli

from evolve.config import PolishConfig
from evolve.loader import builtin_problems, load_problem_folder
from evolve.mutation.blocks import split_blocks
from evolve.mutation.polish import PolishSession, moved, tunable_constants, with_constants
from evolve.program import Program, Status

ADAM = load_problem_folder(builtin_problems()["optimizer_discovery"], {}).seed_programs()["adam"]


def _fixed_text(code: str) -> list[str]:
    return [s.text for s in split_blocks(code) if not s.evolvable]


def test_the_constants_tuned_are_the_blocks_float_literals_but_not_0_or_1() -> None:
    constants = tunable_constants(ADAM)
    assert constants and all(isinstance(c, float) and c not in (0.0, 1.0) for c in constants)
    assert {0.9, 0.999} <= set(constants)
    values = [c * 2 if c >= 1 or c < 0.5 else 0.5 for c in constants]
    code = with_constants(ADAM, len(constants), values)
    assert tunable_constants(code) == tuple(values)
    assert _fixed_text(code) == _fixed_text(ADAM)  # nothing outside the EVOLVE blocks moves


@pytest.mark.parametrize("c", [0.5, 0.9, 0.999, 1e-8, 3.0, 250.0])
def test_a_moved_constant_keeps_its_kind(c: float) -> None:
    for z in (-3.0, -0.5, 0.0, 0.5, 3.0):
        value = moved(c, z)
        assert value > 0
        if 0.5 <= c < 1:
            assert value < 1  # a decay stays a decay
    assert moved(c, 0.0) == pytest.approx(c, rel=1e-3)


def _target(code: str) -> Program:
    return Program(id=7, code=code, operator="ast_mutate", island=0, status=Status.EVALUATED, fitness=0.0)


def test_a_session_learns_from_whole_generations() -> None:
    """CMA-ES minimises minus the fitness: on a fitness that peaks at c = 0.01, a session started at 0.3 gets
    there; and a generation is sampled only once the one before it is fully known."""
    code = "# EVOLVE-BLOCK-START\ndef f(x):\n    return x * 0.3\n# EVOLVE-BLOCK-END\n"

    def minus_fitness(z: float) -> float:
        return abs(math.log10(moved(0.3, z) / 0.01))

    waiting = PolishSession(_target(code), PolishConfig(enabled=True, trials=60, population=6), run_seed=0)
    out = [waiting.next_trial() for _ in range(7)]
    assert all(t is not None and t.generation == 1 for t in out[:6]) and out[6] is None

    session = PolishSession(_target(code), PolishConfig(enabled=True, trials=60, population=6), run_seed=0)
    while (trial := session.next_trial()) is not None:
        trial.value = minus_fitness(trial.z[0])
    assert session.done and len(session.trials) == 60
    assert [t.generation for t in session.trials] == [1 + i // 6 for i in range(60)]
    assert session.trials[0].z == out[0].z  # type: ignore[union-attr]  (seeded: the same samples)
    assert min(t.value for t in session.trials[:6]) > 0.3  # type: ignore[type-var]
    assert min(t.value for t in session.trials[-12:]) < 0.05  # type: ignore[type-var]


def _rows(run: Path) -> list[sqlite3.Row]:
    db = sqlite3.connect(run / "archive.sqlite")
    db.row_factory = sqlite3.Row
    return db.execute("SELECT * FROM programs ORDER BY id").fetchall()


def test_a_run_polishes_its_islands_bests_within_the_budget(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run_cli(
        "run",
        "configs/function_min.yaml",
        "--run-dir",
        str(run),
        "--max-evaluations",
        "60",
        "--set",
        "operators.polish.enabled=true",
        "--set",
        "islands.num_islands=2",
    )
    rows = _rows(run)
    code = {r["id"]: r["code"] for r in rows}
    polished = [r for r in rows if r["operator"] == "polish"]
    trained = [
        r
        for r in rows
        if r["status"] in ("evaluated", "failed") and r["operator"] != "seed" and r["stage_reached"] != "fingerprint"
    ]
    assert len(trained) <= 60
    assert 0 < len([r for r in polished if r["status"] != "rejected"]) <= 0.3 * 60 + 1
    by_target: dict[int, list[dict[str, object]]] = {}
    for r in polished:
        info = json.loads(r["operator_info"])
        assert r["parent_id"] == info["polish_of"]
        assert info["constants"], "a trial changes at least one constant"
        assert _fixed_text(r["code"]) == _fixed_text(code[r["parent_id"]])
        parent_constants = tunable_constants(code[r["parent_id"]])
        assert [c["from"] for c in info["constants"]] == [
            c for c, d in zip(parent_constants, tunable_constants(r["code"]), strict=True) if c != d
        ]
        by_target.setdefault(info["polish_of"], []).append(info)
    for infos in by_target.values():
        assert [i["trial"] for i in infos] == list(range(len(infos)))
        assert len(infos) <= 12
        assert {i["generation"] for i in infos} <= {1, 2}
    assert any(len(infos) == 12 for infos in by_target.values())  # one polish ran to the end
    assert all(
        code[t] and json.loads(next(r["operator_info"] for r in rows if r["id"] == t)).get("polish_of") is None
        for t in by_target
    )  # a polish trial is never polished itself
    status = json.loads(run_cli("status", str(run), "--json").stdout)
    assert "polish" in json.dumps(status["operators"])
