"""The plug-in API: the documented example, an OpenEvolve-layout folder, and the built-in problems."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO, cli_json, db, run_cli

pytestmark = pytest.mark.slow  # end to end: real runs through the CLI and the sandbox


def test_documented_example_is_the_tested_one() -> None:
    doc = (REPO / "docs" / "problems.md").read_text()
    code = re.search(r"```python\n# my_problem/problem.py\n(.*?)```", doc, re.S).group(1)  # type: ignore[union-attr]
    assert (REPO / "tests" / "data" / "guess_three" / "problem.py").read_text() == code


def test_external_problem_folder_runs(tmp_path: Path) -> None:
    run_dir = tmp_path / "g3"
    run_cli(
        "run",
        "--problem",
        str(REPO / "tests" / "data" / "guess_three"),
        "--run-dir",
        str(run_dir),
        "--max-evaluations",
        "40",
        "--set",
        "controller.max_in_flight=2",
    )
    status = cli_json("status", str(run_dir))
    assert status["problem"] == "guess_three" and status["evaluations"] == 40
    seed = db(run_dir).execute("SELECT fitness FROM programs WHERE operator='seed'").fetchone()[0]
    assert status["best"]["fitness"] > seed


def test_openevolve_layout_folder_runs_in_the_sandbox(tmp_path: Path) -> None:
    run_dir = tmp_path / "oe"
    run_cli(
        "run",
        "--problem",
        str(REPO / "tests" / "data" / "openevolve_circle"),
        "--run-dir",
        str(run_dir),
        "--max-evaluations",
        "20",
    )
    status = cli_json("status", str(run_dir))
    assert status["problem"] == "openevolve_circle" and status["evaluations"] == 20
    best = cli_json("show", str(run_dir), str(status["best"]["id"]))
    assert best["metrics"]["evaluate"]["min_distance"] == best["fitness"] > 0


def test_problems_lists_the_builtins() -> None:
    names = {p["name"] for p in cli_json("problems")}
    assert {"function_min", "optimizer_discovery"} <= names
