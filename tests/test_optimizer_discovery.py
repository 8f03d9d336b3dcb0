"""The flagship problem (harness v3): the direction contract, a baseline no candidate can beat by
tuning luck, selection tasks whose signal stands above seed noise, and resistance to cheating."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import run_cli

from evaluators.cascade import evaluate
from evaluators.jobs import EvalJob, JobKind
from evaluators.static_rules import StaticRuleViolation, check_program
from evolve.config import EvaluatorConfig
from evolve.loader import ProblemRef, builtin_problems, load_problem_folder
from evolve.problem import ProblemError
from problems.optimizer_discovery.baselines import (
    BETA2S,
    CACHE,
    HARNESS_VERSION,
    adamw_curve,
    adamw_update,
    cache_key,
    curve_for_seeds,
    seed_losses_at,
)
from problems.optimizer_discovery.problem import BASELINE_SEEDS, load_rule
from problems.optimizer_discovery.tasks import SUITES, TASKS, get_task
from problems.optimizer_discovery.train import LR_GRID, budget_ratio, probe, run_rule, schedule, train, val_losses

FOLDER = builtin_problems()["optimizer_discovery"]
PROBLEM = load_problem_folder(FOLDER, {})
SEEDS = PROBLEM.seed_programs()
LIMITS = EvaluatorConfig(timeout_s=300, memory_mb=4096)
SUITE = SUITES["cpu"]

torch.set_num_threads(1)


def test_zoo_is_complete_and_sgd_comes_first() -> None:
    assert list(SEEDS)[0] == "sgd"
    assert set(SEEDS) == {"sgd", "momentum", "nesterov", "adam", "adamw", "lion", "adafactor", "muon",
                          "adabelief", "adan", "rmsprop"}
    for code in SEEDS.values():
        check_program(code, PROBLEM.allowed_imports)
        assert "lr" not in code.split("EVOLVE-BLOCK-START")[1], "rules never see the learning rate"


def test_stage_roles_use_distinct_tasks() -> None:
    assert [s.name for s in PROBLEM.stages] == ["filter", "select"]
    assert PROBLEM.validate and PROBLEM.heldout and PROBLEM.fingerprint
    roles = [set(SUITE[r]) for r in ("filter", "select", "validate", "heldout")]
    assert sum(len(r) for r in roles) == len(set().union(*roles)), "a task serves one role only"
    assert len(SUITE["select"]) >= 2 and len(SUITE["validate"]) >= 2 and len(SUITE["heldout"]) >= 3
    assert PROBLEM.seeds["validate"] == (0, 1, 2) and len(PROBLEM.seeds["select"]) >= 2


def test_options_are_checked() -> None:
    with pytest.raises(ProblemError, match="unknown option"):
        load_problem_folder(FOLDER, {"sedes": [0]})
    with pytest.raises(ProblemError, match="subset of the baseline"):
        load_problem_folder(FOLDER, {"seeds": [9]})


@pytest.mark.slow
@pytest.mark.parametrize("seed_name", ["adamw", "muon", "adafactor", "adan"])
def test_vmapped_lr_sweep_equals_sequential(seed_name: str) -> None:
    init_state, update = load_rule(SEEDS[seed_name])
    task = get_task("logreg")
    lrs = LR_GRID[2:6]
    vec = train(task, init_state, update, seed=0, steps=25, lrs=lrs, vectorise=True)
    seq = train(task, init_state, update, seed=0, steps=25, lrs=lrs, vectorise=False)
    assert val_losses(task, vec) == pytest.approx(val_losses(task, seq), rel=1e-4, abs=1e-6)


def test_rules_vmap_cannot_batch_fall_back_to_sequential() -> None:
    branch = "    if grad.abs().max() > 1e6:\n        grad = grad * 0.0\n    m = 0.9"
    code = SEEDS["adamw"].replace("    m = 0.9", branch, 1)
    init_state, update = load_rule(code)
    params, vectorised = run_rule(get_task("quadratic"), lambda: load_rule(code), (0,), 10, LR_GRID[:3])
    assert not vectorised and params[0]["x"].shape == (3, 100)


def test_schedule_is_warmup_then_cosine() -> None:
    assert schedule(1, 200) < schedule(10, 200) == pytest.approx(1.0)
    assert schedule(200, 200) == pytest.approx(0.0, abs=1e-9)


def test_rescaling_the_direction_only_moves_the_best_lr() -> None:
    """The rule never sees the LR: multiplying its direction by a grid step shifts its LR curve by one
    grid point and nothing else (the v2 harness let a rule squeeze the grid instead)."""
    task = get_task("mlp_digits")
    init_state, update = load_rule(SEEDS["adamw"])

    def scaled(param, grad, state, step):  # type: ignore[no-untyped-def]
        direction, state = update(param, grad, state, step)
        return direction * 10 ** 0.5, state

    plain = val_losses(task, train(task, init_state, update, 0, 60))
    shifted = val_losses(task, train(task, init_state, scaled, 0, 60))
    # Equal up to float rounding of lr * scale, on the stable part of the grid (at the largest LRs
    # training is chaotic and rounding differences grow).
    assert shifted[:6] == pytest.approx(plain[1:7], rel=2e-3)
    assert min(plain) == pytest.approx(min(shifted), rel=2e-3)


def test_the_adamw_seed_reproduces_the_baselines_grid_exactly() -> None:
    """The seed and the baseline share one code path: at beta2 0.999 on the grid the seed's losses are
    the baseline's own numbers, bit for bit."""
    init_state, update = load_rule(SEEDS["adamw"])
    name = "mlp_digits"
    task = get_task(name)
    curve = adamw_curve(name, "cpu", BASELINE_SEEDS["select"])
    at_n = curve["per_budget"][curve["budgets"].index(curve["n"])]
    columns = [i for i, (lr, b2) in enumerate(at_n["configs"]) if b2 == 0.999 and lr in LR_GRID]
    params, _ = run_rule(task, lambda: (init_state, update), (0, 1), task.steps)
    for row, seed in enumerate((0, 1)):
        assert val_losses(task, params[seed]) == [at_n["losses"][row][i] for i in columns]


@pytest.mark.slow
def test_the_tuned_baseline_written_as_a_candidate_scores_one() -> None:
    """AdamW at the baseline's own best configuration (its beta2; its finer LR reached by scaling the
    direction) matches the baseline: the comparison is fair to both sides."""
    for name in SUITE["select"]:
        task = get_task(name)
        curve = PROBLEM.baseline(name, "select")
        lr, beta2 = curve["best_config"][curve["budgets"].index(curve["n"])]
        grid_lr = min(LR_GRID, key=lambda g: abs(math.log(g / lr)))
        inner = adamw_update(beta2)

        def update(param, grad, state, step, inner=inner, r=lr / grid_lr):  # type: ignore[no-untyped-def]
            direction, state = inner(param, grad, state, step)
            return direction * r, state

        init_state, _ = load_rule(SEEDS["adamw"])
        params, _ = run_rule(task, lambda init=init_state, upd=update: (init, upd), PROBLEM.seeds["select"],
                             task.steps)
        losses = [val_losses(task, params[s]) for s in PROBLEM.seeds["select"]]
        mean = [sum(v) / len(v) for v in zip(*losses, strict=True)]
        assert budget_ratio(min(mean), curve) == pytest.approx(1.0, abs=0.02), name


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


def test_cached_curves_are_current_and_tuned_over_lr_and_beta2() -> None:
    cached = json.loads(CACHE.read_text())
    for role, tasks in SUITE.items():
        for name in tasks:
            key = cache_key(name, "cpu", BASELINE_SEEDS[role])
            assert key.startswith(f"v{HARNESS_VERSION}/cpu/") and key in cached, f"stale or missing curve: {name}"
            curve = cached[key]
            for entry in curve["per_budget"]:
                lrs = {lr for lr, _ in entry["configs"]}
                assert {b for _, b in entry["configs"]} == set(BETA2S)
                assert set(LR_GRID) <= lrs and len(lrs) > len(LR_GRID), "finer than the candidates' grid"
            best = curve_for_seeds(curve, BASELINE_SEEDS[role])["best_loss"]
            assert best[-1] < best[0], (name, best)  # still improving across the budgets


@pytest.mark.parametrize("name", SUITE["select"])
def test_selection_signal_stands_above_seed_noise(name: str) -> None:
    """AdamW's gain from N to 2N is at least 4 standard errors of its loss at N, the standard error taken
    over as many seeds as a candidate is scored on (the search's noise, not the baseline's)."""
    curve = adamw_curve(name, "cpu", BASELINE_SEEDS["select"])
    at_n, at_2n = seed_losses_at(curve, 2), seed_losses_at(curve, 3)
    mean_n, mean_2n = sum(at_n) / len(at_n), sum(at_2n) / len(at_2n)
    std = math.sqrt(sum((x - mean_n) ** 2 for x in at_n) / (len(at_n) - 1))
    standard_error = std / math.sqrt(len(PROBLEM.seeds["select"]))
    assert mean_n - mean_2n >= 4 * standard_error, (name, mean_n - mean_2n, standard_error)


def test_fingerprints_see_behaviour() -> None:
    adamw = SEEDS["adamw"]
    respelled = adamw.replace("(1 - 0.9) * grad", "grad * (1 - 0.9)")
    respelled = respelled.replace("m_hat / (torch", "(1.0 * m_hat) / (torch")
    other = adamw.replace("0.999", "0.99")

    def fp(code: str) -> str:
        return PROBLEM.fingerprint_of({"probe": probe(*load_rule(code))})

    assert respelled != adamw and fp(respelled) == fp(adamw) != fp(other)


def test_a_wrong_shaped_direction_fails_at_the_fingerprint_as_a_contract_error() -> None:
    code = SEEDS["sgd"].replace("direction = grad", "direction = grad.sum()")
    r = evaluate(EvalJob(1, code, JobKind.FINGERPRINT), ProblemRef(str(FOLDER), {}), LIMITS)
    assert not r.ok and r.failure_kind == "contract" and "direction shaped like the parameter" in (r.reason or "")


def _filter_fitness(code: str) -> float | None:
    r = evaluate(EvalJob(1, code), ProblemRef(str(FOLDER), {"seeds": [0]}), LIMITS)
    assert r.stage_reached in {"filter", "select"}
    return r.metrics["filter"]["stage_fitness"] if r.ok else None


@pytest.mark.slow
@pytest.mark.harness
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
        # pull the parameters to zero: a "perfect" loss claim cannot survive trusted validation
        "zero_params": SEEDS["sgd"].replace("direction = grad", "direction = param * 1e4"),
    }
    for name, code in cheats.items():
        got = _filter_fitness(code)
        assert got is None or got <= honest + 1e-9, (name, got, honest)


def test_reading_the_data_is_rejected_before_running() -> None:
    code = SEEDS["sgd"].replace("import torch", "import torch\nimport sklearn.datasets")
    with pytest.raises(StaticRuleViolation):
        check_program(code, PROBLEM.allowed_imports)


@pytest.mark.slow
@pytest.mark.harness
def test_the_zoo_scores_reproduce_on_other_seeds(tmp_path: Path) -> None:
    """Q4: every seed program's search fitness on seeds {0,1} and on {2,3} agree within 10%."""
    scores = []
    for seeds in ("[0, 1]", "[2, 3]"):
        proc = run_cli("baselines", "--option", f"seeds={seeds}", "--json", timeout=900)
        scores.append({row["seed"]: row["fitness"] for row in json.loads(proc.stdout)})
    assert set(scores[0]) == set(TASKS and SEEDS)
    for name in SEEDS:
        a, b = scores[0][name], scores[1][name]
        assert a is not None and b is not None and abs(a / b - 1) <= 0.10, (name, a, b)


ESCAPES = {
    # reach the harness (and the validation data) through a module attribute, no dunder needed
    "sys_modules": 'h = torch.sys.modules["problems.optimizer_discovery.tasks"]',
    "os_module": "torch.os.system('true')",
    "private_api": "torch._C._set_grad_enabled(False)",
    "monkeypatch": "torch.nn.functional.cross_entropy = torch.zeros_like",
    "pickle_load": "torch.load('x.pt')",
    "custom_ops": "torch.library.Library('aten', 'IMPL')",
    "gc_walk": "torch.utils.data.get_worker_info()",
    "package_importer": 'torch.package.sys_importer.import_module("os")',
    "getattr_as_a_value": 'g = getattr\n    g(torch, "sys")',
    "getattr_banned_name": 'getattr(torch, "package")',
    "read_files": 'torch.from_file("/etc/passwd")',
    "gpu_share": "torch.cuda.set_per_process_memory_fraction(1.0)",
    "mangled_private": "torch.__module",
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_rules_cannot_reach_the_harness(name: str) -> None:
    """Static rules refuse the escapes before anything runs..."""
    code = SEEDS["sgd"].replace("    direction = grad", f"    {ESCAPES[name]}\n    direction = grad")
    with pytest.raises(StaticRuleViolation):
        check_program(code, PROBLEM.allowed_imports, PROBLEM.code_rules)


def test_the_runtime_torch_of_a_rule_is_an_allow_list() -> None:
    """...and the torch a rule imports at run time is a view that offers tensor functions only and holds
    no reference to the real module (a second wall, for whatever the static rules miss)."""
    init_state, update = load_rule(SEEDS["adamw"])
    view = update.__globals__["torch"]  # type: ignore[attr-defined]
    for name in ("sys", "os", "package", "cuda", "from_file", "load", "save", "nn", "utils", "library", "hub",
                 "set_num_threads", "manual_seed"):
        with pytest.raises(AttributeError, match="not available to update rules"):
            getattr(view, name)
    with pytest.raises(AttributeError):
        view.zeros_like = None
    assert all(not isinstance(v, type(torch)) or v is view for v in vars(view).values())  # no real module inside
    assert view.linalg.matrix_norm is torch.linalg.matrix_norm and view.zeros_like is torch.zeros_like
    assert view.float32 is torch.float32 and view.sqrt is torch.sqrt
    with pytest.raises(AttributeError):
        _ = view.linalg.torch  # a submodule view is an allow-list too
    safe_getattr = update.__globals__["__builtins__"]["getattr"]  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        safe_getattr(view.zeros_like, "__self__")


def test_every_zoo_rule_runs_inside_the_allow_list() -> None:
    for name, code in SEEDS.items():
        init_state, update = load_rule(code)
        assert probe(init_state, update), name


def test_a_rule_keeps_no_state_across_seeds() -> None:
    """Each seed (and each LR of the sequential fallback) gets a fresh copy of the rule's module, so a
    rule cannot carry what it learnt on one seed into the next (training 2N steps on N's budget)."""
    code = SEEDS["sgd"].replace("def init_state(param):", "SEEN = {}\n\n\ndef init_state(param):").replace(
        "    direction = grad", "    SEEN[step] = SEEN.get(step, 0) + 1\n    direction = grad * SEEN[step]")
    task = get_task("quadratic")
    together, _ = run_rule(task, lambda: load_rule(code), (0, 1), 20, LR_GRID[:3])
    alone, _ = run_rule(task, lambda: load_rule(code), (1,), 20, LR_GRID[:3])
    assert torch.equal(together[1]["x"], alone[1]["x"])


def test_the_curve_is_paired_at_n_and_shaped_by_all_seeds() -> None:
    curve = {"n": 100, "budgets": [25, 50, 100, 200], "seeds": [0, 1, 2, 3],
             "per_budget": [{"budget": b, "configs": [[0.1, 0.9]], "losses": [[base + s] for s in (0.0, 0.2, 0.4, 0.6)]}
                            for b, base in ((25, 4.0), (50, 3.0), (100, 2.0), (200, 1.0))]}
    c = curve_for_seeds(curve, (2, 3))
    assert c["best_loss"][2] == pytest.approx(2.5)  # seeds 2 and 3 alone at N
    offset = 2.5 - 2.3  # against all four seeds' mean at N
    assert c["best_loss"] == pytest.approx([4.3 + offset, 3.3 + offset, 2.5, 1.3 + offset])
