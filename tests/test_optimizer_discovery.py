"""The flagship problem: harness correctness, honest scoring, and resistance to cheating."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from evaluators.cascade import evaluate_cascade
from evaluators.sandbox import Limits
from evaluators.static_rules import StaticRuleViolation, check_program
from evolve.problem import ProblemRef, builtin_problems, load_problem_folder
from problems.optimizer_discovery.baselines import CACHE, HARNESS_VERSION, adamw_curve, cache_key, curve_for_seeds
from problems.optimizer_discovery.problem import STAGE_TASKS, HELDOUT_TASKS, load_rule
from problems.optimizer_discovery.tasks import TASKS, get_task
from problems.optimizer_discovery.train import LR_GRID, budget_ratio, run_rule, schedule, train, val_losses

FOLDER = builtin_problems()["optimizer_discovery"]
PROBLEM = load_problem_folder(FOLDER, {})
SEEDS = PROBLEM.seed_programs()
LIMITS = Limits(timeout_s=300, memory_mb=4096, cpu_seconds=600)

torch.set_num_threads(1)


def test_zoo_is_complete_and_sgd_comes_first() -> None:
    assert list(SEEDS)[0] == "sgd"
    assert set(SEEDS) == {"sgd", "momentum", "nesterov", "adam", "adamw", "lion", "adafactor", "muon",
                          "adabelief", "adan", "rmsprop"}
    for code in SEEDS.values():
        check_program(code, PROBLEM.allowed_imports)


@pytest.mark.parametrize("seed_name", ["adamw", "muon", "adafactor", "adan"])
def test_vmapped_lr_sweep_equals_sequential(seed_name: str) -> None:
    init_state, update = load_rule(SEEDS[seed_name])
    task = get_task("logreg")
    lrs = LR_GRID[2:6]
    vec = train(task, init_state, update, seed=0, steps=25, lrs=lrs, vectorise=True)
    seq = train(task, init_state, update, seed=0, steps=25, lrs=lrs, vectorise=False)
    assert val_losses(task, vec) == pytest.approx(val_losses(task, seq), rel=1e-4, abs=1e-6)


def test_rules_vmap_cannot_batch_fall_back_to_sequential() -> None:
    code = SEEDS["adamw"].replace("    m = 0.9", "    if grad.abs().max() > 1e6:\n        grad = grad * 0.0\n    m = 0.9", 1)
    init_state, update = load_rule(code)
    params, vectorised = run_rule(get_task("quadratic"), init_state, update, (0,), 10, LR_GRID[:3])
    assert not vectorised and params[0]["x"].shape == (3, 100)


def test_schedule_is_warmup_then_cosine() -> None:
    assert schedule(1, 200) < schedule(10, 200) == pytest.approx(1.0)
    assert schedule(200, 200) == pytest.approx(0.0, abs=1e-9)


def test_adamw_scores_exactly_one_on_every_task() -> None:
    """The AdamW seed runs the same seeds and code path as the baseline: score 1.0 by construction."""
    for stage in ("filter",):
        artifacts = PROBLEM.run_stage(SEEDS["adamw"], stage, Path("."))
        score = PROBLEM.score(SEEDS["adamw"], stage, artifacts)
        for task, m in score.metrics["tasks"].items():
            assert m["score"] == pytest.approx(1.0, abs=1e-6), task
        assert score.fitness == pytest.approx(1.0, abs=1e-6)


def test_budget_ratio_interpolates_on_the_envelope() -> None:
    curve = {"n": 100, "budgets": [25, 50, 100, 200], "best_loss": [4.0, 3.0, 2.0, 1.0]}
    assert budget_ratio(2.0, curve) == pytest.approx(1.0)
    assert budget_ratio(1.5, curve) == pytest.approx(math.sqrt(2.0))
    assert budget_ratio(1.0, curve) == pytest.approx(2.0)
    # beyond 2N: extrapolated along the last segment in log-budget, then clipped to [1/4, 4]
    assert budget_ratio(0.1, curve) == pytest.approx(2 ** 1.9)
    assert budget_ratio(-5.0, curve) == 4.0 and budget_ratio(9.0, curve) == 0.25
    assert budget_ratio(float("inf"), curve) == 0.25 and budget_ratio(float("nan"), curve) == 0.25
    # a curve that goes back up is read on its running minimum
    bumpy = {"n": 100, "budgets": [25, 50, 100, 200], "best_loss": [4.0, 2.0, 3.0, 1.0]}
    assert budget_ratio(2.0, bumpy) == pytest.approx(0.5)


def test_cached_adamw_curves_are_current_and_fall_monotonically() -> None:
    """Every task sits where tuned AdamW still improves from N/4 to 2N (no saturation, no overfitting)."""
    cached = json.loads(CACHE.read_text())
    for name in TASKS:
        key = cache_key(name)
        assert key.startswith(f"v{HARNESS_VERSION}/") and key in cached, f"stale or missing AdamW cache for {name}"
        best = curve_for_seeds(adamw_curve(name), (0, 1, 2))["best_loss"]
        assert all(a > b for a, b in zip(best, best[1:], strict=False)), (name, best)
        assert best[0] / best[-1] > 1.02, (name, best)


def test_stage_layout() -> None:
    assert [s.name for s in PROBLEM.stages] == ["filter", "select"]
    assert set(STAGE_TASKS["select"]) == {"mlp_digits", "char_lm"}
    assert {"char_lm_w64", "char_lm_w128"} <= set(HELDOUT_TASKS) and len(HELDOUT_TASKS) >= 3


def _filter_fitness(code: str) -> float | None:
    ref = ProblemRef(str(FOLDER), {"seeds": [0]})
    r = evaluate_cascade(1, code, ref, LIMITS)
    assert r.stage_reached in {"filter", "select"}
    return r.metrics["filter"]["stage_fitness"] if r.ok else None


def test_cheating_candidates_gain_nothing() -> None:
    honest = _filter_fitness(SEEDS["sgd"])
    assert honest is not None
    cheats = {
        # replace the loss the harness differentiates: training sees zero loss
        "patch_loss": SEEDS["sgd"].replace(
            "def init_state(param):",
            "torch.nn.functional.cross_entropy = lambda *a, **k: torch.zeros(())\n\n\ndef init_state(param):"),
        # print forged metrics where a naive harness would parse them
        "print_metrics": SEEDS["sgd"].replace(
            "def init_state(param):",
            "print('{\"fitness\": 100.0, \"score\": 4.0, \"val_loss\": 0.0}')\n\n\ndef init_state(param):"),
        # zero the parameters: a "perfect" loss claim cannot survive trusted validation
        "zero_params": SEEDS["sgd"].replace("return param - lr * direction", "return param * 0.0"),
    }
    for name, code in cheats.items():
        got = _filter_fitness(code)
        assert got is None or got <= honest + 1e-9, (name, got, honest)


def test_reading_the_data_is_rejected_before_running() -> None:
    code = SEEDS["sgd"].replace("import torch", "import torch\nimport sklearn.datasets")
    with pytest.raises(StaticRuleViolation):
        check_program(code, PROBLEM.allowed_imports)
