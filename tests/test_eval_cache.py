"""The opt-in evaluation cache across runs (evaluator.cache_path), driven through the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import REPO, db, run_cli

pytestmark = pytest.mark.slow  # end to end: real runs through the CLI, sandbox and Ray


def _run(run_dir: Path, problem: Path, cache: Path, *extra: str) -> None:
    run_cli(
        "run",
        "--problem",
        str(problem),
        "--run-dir",
        str(run_dir),
        "--max-evaluations",
        "12",
        "--set",
        f"evaluator.cache_path={cache}",
        "--set",
        "controller.max_in_flight=1",
        *extra,
    )


def test_a_second_run_reuses_results_and_a_new_problem_version_does_not(tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    problem = REPO / "tests/data/guess_three"
    _run(tmp_path / "a", problem, cache)
    _run(tmp_path / "b", problem, cache)  # same seed, one slot: the same programs come up again
    first = {
        r["code_hash"]: r["fitness"]
        for r in db(tmp_path / "a").execute("SELECT code_hash, fitness FROM programs WHERE status='evaluated'")
    }
    second = (
        db(tmp_path / "b")
        .execute("SELECT code_hash, fitness, metrics FROM programs WHERE status='evaluated'")
        .fetchall()
    )
    hits = [r for r in second if '"cached": true' in r["metrics"]]
    assert len(hits) == len(second) > 5  # every success of run a was remembered, seed included
    assert all(first[r["code_hash"]] == r["fitness"] for r in hits)
    # Another version of the problem is another key: nothing is reused.
    v2 = tmp_path / "guess_three_v2"
    shutil.copytree(problem, v2, ignore=shutil.ignore_patterns("__pycache__"))
    (v2 / "problem.py").write_text((v2 / "problem.py").read_text().replace('version = "1"', 'version = "2"'))
    _run(tmp_path / "c", v2, cache)
    third = db(tmp_path / "c").execute("SELECT metrics FROM programs WHERE status='evaluated'").fetchall()
    assert third and not any('"cached": true' in r["metrics"] for r in third)
    # Tighter limits are another key too: a result obtained under looser ones is not reused.
    _run(tmp_path / "d", problem, cache, "--set", "evaluator.memory_mb=1024")
    fourth = db(tmp_path / "d").execute("SELECT metrics FROM programs WHERE status='evaluated'").fetchall()
    assert fourth and not any('"cached": true' in r["metrics"] for r in fourth)
