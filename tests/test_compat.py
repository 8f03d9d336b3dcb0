"""Problem folders in OpenEvolve's and ShinkaEvolve's layouts run unchanged (folders written here for
this project): EvaluationResult with artifacts, a two-stage cascade with thresholds from config.yaml,
config.yaml read as defaults, a seed importing a non-stdlib package outside its block, and
run_shinka_eval with validate and aggregate functions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import cli_json, db, run_cli
from openai_server import OpenAIServer, Reply, Request

from evaluators.static_rules import StaticRuleViolation, check_program, imports_of

pytestmark = pytest.mark.slow  # end to end: real runs through the CLI and the sandbox

OE_SEED = '''"""Guess numbers close to 0.5 (numpy is imported outside the evolve block)."""
import numpy as np


# EVOLVE-BLOCK-START
def solve():
    return [0.1, 0.9, 0.3]
# EVOLVE-BLOCK-END


def run():
    return np.asarray(solve(), dtype=float)
'''
OE_EVALUATOR = """
import importlib.util

import numpy as np
from openevolve.evaluation_result import EvaluationResult


def _load(path):
    spec = importlib.util.spec_from_file_location("program", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def evaluate_stage1(program_path):
    values = _load(program_path).run()
    if values.shape != (3,):
        return {"combined_score": 0.0, "error": "wrong shape"}
    return EvaluationResult(metrics={"combined_score": float(1.0 - abs(values[0] - 0.5))},
                            artifacts={"first": f"first value {values[0]:.4f}"})


def evaluate_stage2(program_path):
    values = _load(program_path).run()
    err = float(np.abs(values - 0.5).mean())
    return EvaluationResult(metrics={"combined_score": 1.0 - err, "mean_error": err, "note": "text is dropped"},
                            artifacts={"feedback": f"mean distance to 0.5 is {err:.4f}", "raw": b"bytes too"})


def evaluate(program_path):
    return evaluate_stage2(program_path)
"""


def _oe_folder(root: Path, llm_url: str | None = None) -> Path:
    folder = root / "oe_guess"
    folder.mkdir()
    (folder / "initial_program.py").write_text(OE_SEED)
    (folder / "evaluator.py").write_text(OE_EVALUATOR)
    config = {
        "max_iterations": 20,
        "random_seed": 4,
        "checkpoint_interval": 5,
        "log_level": "INFO",
        "database": {"num_islands": 2, "migration_interval": 4, "population_size": 40, "archive_size": 10},
        "evaluator": {
            "cascade_evaluation": True,
            "cascade_thresholds": [0.7],
            "timeout": 30,
            "parallel_evaluations": 2,
        },
        "prompt": {"system_message": "Make solve() return three numbers close to 0.5.", "num_top_programs": 2},
        "diff_based_evolution": False,
        "allow_full_rewrites": True,
    }
    if llm_url:
        config["llm"] = {
            "api_base": llm_url,
            "api_key": "${OE_TEST_KEY}",
            "temperature": 0.5,
            "primary_model": "scripted-oe",
            "primary_model_weight": 1.0,
        }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def test_an_openevolve_folder_runs_with_its_config_cascade_and_artifacts(tmp_path: Path) -> None:
    prompts: list[str] = []

    def model(req: Request) -> Reply:
        prompts.append(req.prompt)
        return Reply("Closer.\n```python\ndef solve():\n    return [0.45, 0.55, 0.5]\n```\n")

    with OpenAIServer(model) as server:
        folder = _oe_folder(tmp_path, server.url)
        run_dir = tmp_path / "run"
        proc = run_cli(
            "run",
            "--problem",
            str(folder),
            "--run-dir",
            str(run_dir),
            "--set",
            "operators.weights={ast_mutate: 3, ast_crossover: 1, llm_rewrite: 1}",
            env={"OE_TEST_KEY": "sk-oe-test-key-000000000000"},
            timeout=400,
        )
    # config.yaml: 20 iterations, 2 islands, 2 parallel evaluations, seed 4; the rest listed once
    status = cli_json("status", str(run_dir))
    assert status["evaluations"] == 20 and status["seed"] == 4 and len(status["islands"]) == 2
    cfg = json.loads(db(run_dir).execute("SELECT config_json FROM run").fetchone()[0])
    assert cfg["controller"]["max_in_flight"] == 2 and cfg["llm"]["models"][0]["api_key_env"] == "OE_TEST_KEY"
    assert cfg["operators"]["weights"]["llm_rewrite"] == 1  # --set wins over config.yaml's mapping
    note = next(line for line in proc.stderr.splitlines() if "no counterpart" in line)
    for key in ("checkpoint_interval", "log_level", "database.archive_size", "allow_full_rewrites"):
        assert key in note, key
    assert "max_iterations" not in note and "num_islands" not in note
    # the cascade: stage 2 only for programs whose stage 1 reached the threshold; artifacts stored
    rows = [json.loads(r[0]) for r in db(run_dir).execute("SELECT metrics FROM programs WHERE status='evaluated'")]
    both = [m["cascade"] for m in rows if m["cascade"]["stages_run"] == ["evaluate_stage1", "evaluate_stage2"]]
    first = [m["cascade"] for m in rows if m["cascade"]["stages_run"] == ["evaluate_stage1"]]
    assert both and first
    assert all(m["combined_score"] < 0.7 and "feedback" not in m["artifacts"] for m in first)
    assert all(
        "mean distance to 0.5" in m["artifacts"]["feedback"]
        and m["artifacts"]["raw"] == "bytes too"
        and "note" not in m
        for m in both
    )
    # the system message is the problem description, and artifacts reach the next prompts
    assert prompts and "three numbers close to 0.5" in prompts[0]
    assert any("Its evaluator reported:" in p and ("mean distance to 0.5" in p or "first value" in p) for p in prompts)


def test_seed_imports_are_allowed_and_others_name_the_config_key(tmp_path: Path) -> None:
    allowed = frozenset({"math"}) | imports_of(OE_SEED)
    check_program(OE_SEED.replace("[0.1, 0.9, 0.3]", "list(np.ones(3) / 2)"), allowed)
    with pytest.raises(StaticRuleViolation) as info:
        check_program(OE_SEED.replace("def solve():", "import requests\n\n\ndef solve():"), allowed)
    message = str(info.value)
    assert "'requests'" in message and "problem.allowed_imports" in message and "numpy" not in message
    folder = _oe_folder(tmp_path)
    run_cli(
        "run",
        "--problem",
        str(folder),
        "--run-dir",
        str(tmp_path / "r"),
        "--max-evaluations",
        "8",
        "--set",
        "problem.allowed_imports=[requests]",
    )
    cfg = json.loads(db(tmp_path / "r").execute("SELECT config_json FROM run").fetchone()[0])
    assert cfg["problem"]["allowed_imports"] == ["requests"] and cfg["budget"]["max_evaluations"] == 8


SHINKA_INITIAL = """# EVOLVE-BLOCK-START
def guess(seed):
    return 0.25 + 0.01 * seed
# EVOLVE-BLOCK-END


def run_experiment(seed=0):
    return {"value": guess(seed), "seed": seed}
"""
SHINKA_EVALUATE = """
import argparse

from shinka.core import run_shinka_eval


def validate(result):
    if not 0.0 <= result["value"] <= 1.0:
        return False, f"value {result['value']:.3f} is outside [0, 1]"
    return True, None


def aggregate(results):
    errors = [abs(r["value"] - 0.7) for r in results]
    score = 1.0 - sum(errors) / len(errors)
    return {"combined_score": score, "public": {"mean_error": sum(errors) / len(errors)},
            "private": {"values": [r["value"] for r in results]},
            "text_feedback": f"the values were {[round(r['value'], 3) for r in results]}; aim for 0.7"}


def main(program_path, results_dir):
    run_shinka_eval(program_path=program_path, results_dir=results_dir, experiment_fn_name="run_experiment",
                    num_runs=3, get_experiment_kwargs=lambda i: {"seed": i}, validate_fn=validate,
                    aggregate_metrics_fn=aggregate)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--program_path", default="initial.py")
    parser.add_argument("--results_dir", default="results")
    args = parser.parse_args()
    main(args.program_path, args.results_dir)
"""


def _shinka_folder(root: Path) -> Path:
    folder = root / "shinka_guess"
    folder.mkdir()
    (folder / "initial.py").write_text(SHINKA_INITIAL)
    (folder / "evaluate.py").write_text(SHINKA_EVALUATE)
    return folder


def test_a_shinka_folder_runs_with_validation_and_feedback(tmp_path: Path) -> None:
    folder = _shinka_folder(tmp_path)
    run_dir = tmp_path / "run"
    run_cli("run", "--problem", str(folder), "--run-dir", str(run_dir), "--max-evaluations", "20", "--set", "seed=1")
    assert cli_json("status", str(run_dir))["evaluations"] == 20
    conn = db(run_dir)
    seed = json.loads(conn.execute("SELECT metrics FROM programs WHERE operator='seed'").fetchone()[0])["evaluate"]
    assert seed["combined_score"] == pytest.approx(1 - abs(0.26 - 0.7)) and seed["num_valid_runs"] == 3
    assert seed["public"]["mean_error"] > 0 and len(seed["private"]["values"]) == 3
    assert "aim for 0.7" in seed["artifacts"]["text_feedback"]
    fitness = conn.execute("SELECT fitness FROM programs WHERE operator='seed'").fetchone()[0]
    assert fitness == pytest.approx(seed["combined_score"])
    # A program failing validate_fn fails with that message.
    bad = SHINKA_INITIAL.replace("0.25 + 0.01 * seed", "5.0 + seed")
    (folder / "initial.py").write_text(bad)
    proc = run_cli("problems", "--check", str(folder), check=False)
    assert proc.returncode == 2 and "Validation failed: value 5.000 is outside [0, 1]" in proc.stdout


def test_problems_check_names_the_layout_and_runs_the_seed(tmp_path: Path) -> None:
    report = cli_json("problems", "--check", str(_oe_folder(tmp_path)))
    assert report["layout"] == "openevolve" and report["ok"] and report["fitness"] > 0
    report = cli_json("problems", "--check", str(_shinka_folder(tmp_path)))
    assert report["layout"] == "shinka" and report["ok"]
    empty = tmp_path / "nothing"
    empty.mkdir()
    proc = run_cli("problems", "--check", str(empty), check=False)
    assert proc.returncode == 2 and "not a problem folder" in proc.stderr and "Traceback" not in proc.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "initial_program.py").write_text("def solve(:\n")
    (broken / "evaluator.py").write_text("def evaluate(p):\n    return {}\n")
    proc = run_cli("problems", "--check", str(broken), check=False)
    assert proc.returncode == 2 and "syntax" in proc.stderr.lower() and "Traceback" not in proc.stderr


def test_the_shims_are_not_importable_by_the_engine() -> None:
    """They live on the evaluator's path inside the sandbox only."""
    import importlib.util

    assert importlib.util.find_spec("openevolve") is None and importlib.util.find_spec("shinka") is None


# -- the candidate cannot set its own score ------------------------------------------------------
OE_FORGE = """

# appended by a hostile mutation: in OpenEvolve's layout this runs inside the evaluator's process
import sys as _sys
for _m in list(_sys.modules.values()):
    if hasattr(_m, "evaluate_stage1"):  # the stage running now looks abs() up in its module; the next is replaced
        _m.abs = lambda value: 1.0 - 1e9
        _m.evaluate_stage2 = _m.evaluate = lambda path: {"combined_score": 1e9}
"""
SHINKA_FORGE = """

# appended by a hostile mutation: in ShinkaEvolve's layout this runs inside evaluate.py's process
import json as _json
_real_dump = _json.dump
_json.dump = lambda obj, fh, **kw: _real_dump({**obj, "combined_score": 1e9} if "combined_score" in obj else obj,
                                              fh, **kw)
"""


@pytest.mark.parametrize("layout", ["openevolve", "shinka"])
def test_a_candidate_cannot_set_its_own_score(tmp_path: Path, layout: str) -> None:
    """The candidate runs in a jail of its own and answers the evaluator's calls with plain data: code that
    patches the evaluator (or the library that writes its results) changes nothing. With isolation off it
    shares the evaluator's process, wins, and the run says its fitness is self-reported."""
    folder = _oe_folder(tmp_path) if layout == "openevolve" else _shinka_folder(tmp_path)
    seed_file = folder / ("initial_program.py" if layout == "openevolve" else "initial.py")
    honest = cli_json("problems", "--check", str(folder))["fitness"]
    seed_file.write_text(seed_file.read_text() + (OE_FORGE if layout == "openevolve" else SHINKA_FORGE))
    assert cli_json("problems", "--check", str(folder))["fitness"] == pytest.approx(honest)
    run_cli("run", "--problem", str(folder), "--run-dir", str(tmp_path / "trusted"), "--max-evaluations", "2")
    status = cli_json("status", str(tmp_path / "trusted"))
    assert status["isolation"]["fitness"] == "trusted" and status["isolation"]["mode"] == "bubblewrap"
    assert db(tmp_path / "trusted").execute("SELECT fitness FROM programs WHERE operator='seed'").fetchone()[
        0
    ] == pytest.approx(honest)
    proc = run_cli(
        "run",
        "--problem",
        str(folder),
        "--run-dir",
        str(tmp_path / "open"),
        "--max-evaluations",
        "2",
        "--set",
        "evaluator.isolation=none",
    )
    assert "self-reported" in proc.stderr
    status = cli_json("status", str(tmp_path / "open"))
    assert status["isolation"]["fitness"] == "self-reported" and status["isolation"]["mode"] == "none"
    assert db(tmp_path / "open").execute("SELECT fitness FROM programs WHERE operator='seed'").fetchone()[0] == 1e9


SUBPROCESS_EVALUATOR = '''
import json
import subprocess
import sys

RUNNER = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("program", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
values = module.run()
print(json.dumps({"values": [float(v) for v in values], "shape": list(values.shape)}))
"""


def evaluate(program_path):
    with open(program_path) as fh:
        text = fh.read()
    done = subprocess.run([sys.executable, "-c", RUNNER, program_path], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return {"combined_score": 0.0, "error": done.stderr[-500:]}
    out = json.loads(done.stdout)
    err = sum(abs(v - 0.5) for v in out["values"]) / 3
    return {"combined_score": 1.0 - err, "shape_ok": out["shape"] == [3], "mentions_solve": "def solve" in text}
'''


def test_an_evaluator_that_runs_the_program_in_a_subprocess_still_reaches_it(tmp_path: Path) -> None:
    """OpenEvolve's circle-packing evaluator style: a temporary script, run as a subprocess, imports the
    program and prints its result. The subprocess attaches to the candidate's jail too (numpy arrays
    cross as arrays), and the program's source stays readable as text."""
    folder = tmp_path / "oe_subprocess"
    folder.mkdir()
    (folder / "initial_program.py").write_text(OE_SEED)
    (folder / "evaluator.py").write_text(SUBPROCESS_EVALUATOR)
    report = cli_json("problems", "--check", str(folder))
    metrics = report["metrics"]["evaluate"]
    assert report["ok"] and metrics["shape_ok"] is True and metrics["mentions_solve"] is True, report
    assert report["fitness"] == pytest.approx(1.0 - (0.4 + 0.4 + 0.2) / 3)
