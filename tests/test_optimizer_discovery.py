"""The flagship problem (harness 4): a fitness no program can game, tiers that are independent, a score
continuous in the loss, the same LR treatment for candidates and baseline, and honest statistics."""

from __future__ import annotations

import json
import math
import random
import threading
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import run_cli

from evaluators.cascade import evaluate
from evaluators.jobs import EvalJob, JobKind
from evaluators.static_rules import StaticRuleViolation, check_program
from evolve.config import EvaluatorConfig
from evolve.loader import ProblemRef, builtin_problems, load_problem_folder
from evolve.problem import ProblemError
from problems.optimizer_discovery import baselines
from problems.optimizer_discovery.baselines import (
    BETA2S,
    BUDGET_FACTORS,
    CACHE,
    adamw_curve,
    baseline_seeds,
    cache_key,
    curve_for_seeds,
    jobs,
    seed_losses_at,
)
from problems.optimizer_discovery.probe import behaviour, probe, scale_free
from problems.optimizer_discovery.problem import interval, load_rule
from problems.optimizer_discovery.scoring import budget_ratio
from problems.optimizer_discovery.suites import SEEDS as TIER_SEEDS
from problems.optimizer_discovery.suites import SUITES, TASKS, get_task, task_steps
from problems.optimizer_discovery.train import (
    LR_GRID,
    RuleContractError,
    initial_loss,
    run_rule,
    schedule,
    train,
    val_losses,
)

FOLDER = builtin_problems()["optimizer_discovery"]
PROBLEM = load_problem_folder(FOLDER, {})
SEEDS = PROBLEM.seed_programs()
LIMITS = EvaluatorConfig(timeout_s=600, memory_mb=4096)
SUITE = SUITES["cpu"]
TIERS = ("select", "validate", "heldout")

torch.set_num_threads(1)


def test_zoo_is_complete_and_sgd_comes_first() -> None:
    assert list(SEEDS)[0] == "sgd"
    assert set(SEEDS) == {
        "sgd",
        "momentum",
        "nesterov",
        "adam",
        "adamw",
        "lion",
        "adafactor",
        "muon",
        "adabelief",
        "adan",
        "rmsprop",
    }
    for code in SEEDS.values():
        check_program(code, PROBLEM.allowed_imports, PROBLEM.code_rules)
        block = code.split("EVOLVE-BLOCK-START")[1]
        assert "lr" not in block and "def update(param, grad, state, step, total_steps):" in block


# -- independent tiers ---------------------------------------------------------------------------
def _keywords(name: str) -> dict[str, object]:
    return dict(TASKS[name].keywords)


def _data(name: str) -> str:
    kw = _keywords(name)
    return str(
        kw.get("data")
        or kw.get("corpus")
        or kw.get("images")
        or ("pydoc" if TASKS[name].func.__name__ == "char_lm" else f"teacher{kw.get('teacher_seed')}")
    )


def _families(role: str) -> set[str]:
    return {family for name in SUITE[role] for family in _families_of(name)}


def _objective(name: str) -> str:
    x, y = get_task(name).make_batch(get_task(name).batches(0))
    if y.dtype == torch.long:
        return "classify"
    return "reconstruct" if y.shape == x.shape and torch.equal(x, y) else "regress"


def _kinds(role: str) -> set[tuple[str, str]]:
    """(model family, objective) of a role's tasks: an MLP classifier and an MLP autoencoder are not alike."""
    return {(next(iter(_families_of(name))), _objective(name)) for name in SUITE[role]}


def _families_of(name: str) -> set[str]:
    task = get_task(name)
    module = next(
        (c.cell_contents for c in (task.loss.__closure__ or ()) if isinstance(c.cell_contents, torch.nn.Module)), None
    )
    return {type(module).__name__ if module is not None else name}


def _shapes(role: str) -> set[tuple[int, ...]]:
    return {tuple(p.shape) for name in SUITE[role] for p in get_task(name).init_params(0).values()}


def test_the_tiers_share_no_data_stream_teacher_or_seed() -> None:
    roles = ("filter", *TIERS)
    tasks = [t for r in roles for t in SUITE[r]]
    assert len(tasks) == len(set(tasks)), "a task serves one role only"
    streams = [_keywords(t).get("stream", 1) for t in tasks]
    assert len(streams) == len(set(streams)), "each task has a batch stream of its own"
    teachers = [_keywords(t)["teacher_seed"] for t in tasks if "teacher_seed" in _keywords(t)]
    assert len(teachers) == len(set(teachers)), "no two tasks share a teacher"
    data = {r: {_data(t) for t in SUITE[r]} for r in TIERS}
    assert data["select"].isdisjoint(data["validate"]) and data["select"].isdisjoint(data["heldout"])
    assert data["validate"].isdisjoint(data["heldout"])
    seeds = {r: set(PROBLEM.seeds[r]) for r in ("select", "validate", "confirm", "heldout")}
    assert all(seeds[a].isdisjoint(seeds[b]) for a in seeds for b in seeds if a < b), seeds
    assert len(SUITE["validate"]) >= 3, "no single validate task decides"


def test_higher_tiers_show_families_shapes_and_horizons_select_never_does() -> None:
    select = _families("select")
    assert _families("validate") - select and _families("heldout") - select
    assert _shapes("validate") - _shapes("select") and _shapes("heldout") - _shapes("select")
    longest = max(task_steps(t) for t in SUITE["select"])
    assert max(task_steps(t) for t in SUITE["heldout"]) >= 5 * longest


def test_validate_covers_every_kind_of_task_the_other_tiers_judge_on() -> None:
    """The tier that picks the champion has a task of its own data for every (model family, objective) that
    select or held-out shows, so that no kind of task it lacks decides the report."""
    missing = (_kinds("select") | _kinds("heldout")) - _kinds("validate")
    assert not missing, f"no validate task of kind {sorted(missing)}"
    assert max(task_steps(t) for t in SUITE["validate"]) >= 4 * max(task_steps(t) for t in SUITE["select"])


def test_the_candidates_process_never_builds_validation_data() -> None:
    for name in (*SUITE["select"], *SUITE["validate"]):
        task = TASKS[name](torch.device("cpu"))  # a fresh task, as a forked child has it
        train(task, *load_rule(SEEDS["sgd"]), seed=0, steps=2, lrs=LR_GRID[:2])
        assert task._val is None, name


def test_a_task_is_the_same_when_other_threads_build_or_initialise_meanwhile() -> None:
    """The trusted side scores two evaluations at once (the process backend's threads): a task built while
    another thread draws initial parameters must not get a different teacher (torch's global generator)."""
    cpu = torch.device("cpu")
    names = ("teacher_reg_small", "teacher_cls")
    reference = {n: TASKS[n](cpu).make_val()[1] for n in names}
    stop = threading.Event()

    def initialise() -> None:
        task, i = get_task("mlp_digits"), 0
        while not stop.is_set():
            task.init_params(i)
            i += 1

    other = threading.Thread(target=initialise)
    other.start()
    try:
        for _ in range(15):
            for n in names:
                assert torch.equal(TASKS[n](cpu).make_val()[1], reference[n]), n
    finally:
        stop.set()
        other.join()


def test_options_are_checked() -> None:
    with pytest.raises(ProblemError, match="unknown option"):
        load_problem_folder(FOLDER, {"sedes": [0]})
    with pytest.raises(ProblemError, match="subset of the baseline"):
        load_problem_folder(FOLDER, {"seeds": [100]})  # a validate seed is never a search seed
    with pytest.raises(ProblemError, match="compute_penalty"):
        load_problem_folder(FOLDER, {"compute_penalty": -1})


# -- the contract: what crosses back is checked exactly ----------------------------------------------
class _Spy(torch.Tensor):
    seen: list[str] = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        cls.seen.append(getattr(func, "__name__", str(func)))
        return super().__torch_function__(func, types, args, kwargs or {})


def _subclassing(param, grad, state, step, total_steps):  # type: ignore[no-untyped-def]
    return grad.as_subclass(_Spy), state


def test_a_tensor_subclass_never_reaches_the_harness() -> None:
    """The v3 takeover: a direction of a subclass with __torch_function__ saw every later operation of the
    process. Sequentially it is refused; vectorised, vmap returns plain tensors and the subclass sees
    nothing of training or validation."""
    task = get_task("teacher_cls")
    with pytest.raises(RuleContractError, match="must be a torch.Tensor"):
        train(
            task,
            lambda p: {},
            _subclassing,
            0,
            2,
            LR_GRID[:2],
            vectorise=False,
            per_lr=[(lambda p: {}, _subclassing)] * 2,
        )
    _Spy.seen.clear()
    params = train(task, lambda p: {}, _subclassing, 0, 3, LR_GRID[:2])
    val_losses(task, params)
    assert all(type(p) is torch.Tensor for p in params.values()) and not _Spy.seen


@pytest.mark.parametrize(
    "state, error",
    [
        ({"m": torch.zeros(3, dtype=torch.int64)}, "must be torch.float32"),
        ({"m": [1.0]}, "must be a torch.Tensor"),
        ([torch.zeros(3)], "dict of tensors"),
    ],
)
def test_state_entries_are_checked_exactly(state: object, error: str) -> None:
    task = get_task("quadratic")

    def update(param, grad, s, step, total_steps):  # type: ignore[no-untyped-def]
        return grad, state

    with pytest.raises(RuleContractError, match=error):
        train(task, lambda p: {}, update, 0, 2, LR_GRID[:2], vectorise=False, per_lr=[(lambda p: {}, update)] * 2)


def test_a_rule_cannot_write_through_the_parameter_it_is_given() -> None:
    """v3 handed the live parameter: ``param.sub_(...)`` trained outside the LR sweep and the schedule. Now
    the rule gets a copy, so a rule that only writes in place trains nothing."""
    task = get_task("teacher_cls")

    def in_place(param, grad, state, step, total_steps):  # type: ignore[no-untyped-def]
        param.sub_(0.05 * grad)
        grad.zero_()
        return torch.zeros_like(grad), state

    losses = val_losses(task, train(task, lambda p: {}, in_place, 0, 40))
    assert losses == pytest.approx([initial_loss(task, (0,))] * len(LR_GRID), rel=1e-6)


def test_the_step_and_the_budget_are_arguments() -> None:
    seen: list[tuple[int, int]] = []

    def update(param, grad, state, step, total_steps):  # type: ignore[no-untyped-def]
        seen.append((step, total_steps))
        return grad, state

    train(
        get_task("quadratic"), lambda p: {}, update, 0, 7, LR_GRID[:1], vectorise=False, per_lr=[(lambda p: {}, update)]
    )
    assert seen == [(s, 7) for s in range(1, 8)]

    def harness3(param, grad, state, step):  # type: ignore[no-untyped-def]  # still accepted
        return grad, state

    assert torch.isfinite(train(get_task("quadratic"), lambda p: {}, harness3, 0, 3, LR_GRID[:2])["x"]).all()


@pytest.mark.slow
@pytest.mark.parametrize("seed_name", ["adamw", "muon", "adafactor", "adan"])
def test_vmapped_lr_sweep_equals_sequential(seed_name: str) -> None:
    init_state, update = load_rule(SEEDS[seed_name])
    task = get_task("teacher_reg_small")
    lrs = LR_GRID[2:6]
    vec = train(task, init_state, update, seed=0, steps=25, lrs=lrs, vectorise=True)
    seq = train(task, init_state, update, seed=0, steps=25, lrs=lrs, vectorise=False)
    assert val_losses(task, vec) == pytest.approx(val_losses(task, seq), rel=1e-4, abs=1e-6)


def test_rules_vmap_cannot_batch_fall_back_to_sequential() -> None:
    branch = "    if grad.abs().max() > 1e6:\n        grad = grad * 0.0\n    m = 0.9"
    code = SEEDS["adamw"].replace("    m = 0.9", branch, 1)
    params, vectorised = run_rule(get_task("quadratic"), lambda: load_rule(code), (0,), 10, LR_GRID[:3])
    assert not vectorised and params[0]["x"].shape == (3, 100)


def test_schedule_is_warmup_then_cosine() -> None:
    assert schedule(1, 200) < schedule(10, 200) == pytest.approx(1.0)
    assert schedule(200, 200) == pytest.approx(0.0, abs=1e-9)


def test_a_rule_keeps_no_state_across_seeds() -> None:
    """Each seed (and each LR of the sequential fallback) gets a fresh copy of the rule's module."""
    code = (
        SEEDS["sgd"]
        .replace("def init_state(param):", "SEEN = {}\n\n\ndef init_state(param):")
        .replace("    direction = grad", "    SEEN[step] = SEEN.get(step, 0) + 1\n    direction = grad * SEEN[step]")
    )
    task = get_task("quadratic")
    together, _ = run_rule(task, lambda: load_rule(code), (0, 1), 20, LR_GRID[:3])
    alone, _ = run_rule(task, lambda: load_rule(code), (1,), 20, LR_GRID[:3])
    assert torch.equal(together[1]["x"], alone[1]["x"])


# -- scoring ---------------------------------------------------------------------------------------
def _curve(losses: list[float], n: int = 100) -> dict[str, object]:
    return {"n": n, "budgets": [max(1, int(n * f)) for f in BUDGET_FACTORS], "best_loss": losses}


def test_budget_ratio_is_measured_up_to_4n_never_extrapolated() -> None:
    curve = _curve([5.0, 4.0, 3.0, 2.0, 1.0])
    assert budget_ratio(3.0, curve) == pytest.approx(1.0)
    assert budget_ratio(2.5, curve) == pytest.approx(math.sqrt(2.0))
    assert budget_ratio(2.0, curve) == pytest.approx(2.0) and budget_ratio(1.0, curve) == pytest.approx(4.0)
    assert budget_ratio(0.1, curve) == 4.0 and budget_ratio(9.0, curve) == 0.25
    assert budget_ratio(float("inf"), curve) == 0.25 and budget_ratio(float("nan"), curve) == 0.25


def test_the_score_is_continuous_and_monotone_in_the_loss() -> None:
    """Property test over random curves, flat and non-monotone ones included (v3 jumped from 1.0 to 2.0 at a
    flat stretch): a smaller loss never scores less, and a tiny change of loss moves the score a little."""
    rng = random.Random(0)
    for _ in range(300):
        values = [rng.uniform(0.1, 5.0) for _ in range(5)]
        if rng.random() < 0.4:  # flat stretches
            values = [values[0]] * 2 + values[2:]
        curve = _curve(sorted(values, reverse=rng.random() < 0.7))
        losses = sorted(rng.uniform(0.0, 6.0) for _ in range(60))
        scores = [budget_ratio(x, curve) for x in losses]
        assert all(a >= b for a, b in zip(scores, scores[1:])), curve
        for x in losses:
            assert abs(budget_ratio(x, curve) - budget_ratio(x + 1e-7, curve)) < 1e-3, (x, curve)


def test_the_curve_is_paired_at_n_and_shaped_by_all_seeds() -> None:
    budgets = [25, 50, 100, 200, 400]
    curve = {
        "n": 100,
        "budgets": budgets,
        "seeds": [0, 1, 2, 3],
        "per_budget": [
            {"budget": b, "configs": [[0.1, 0.9]], "losses": [[base + s] for s in (0.0, 0.2, 0.4, 0.6)]}
            for b, base in zip(budgets, (4.0, 3.0, 2.0, 1.0, 0.5), strict=True)
        ],
    }
    c = curve_for_seeds(curve, (2, 3))
    assert c["best_loss"][2] == pytest.approx(2.5)  # seeds 2 and 3 alone at N
    offset = 2.5 - 2.3  # against all four seeds' mean at N
    assert c["best_loss"] == pytest.approx([4.3 + offset, 3.3 + offset, 2.5, 1.3 + offset, 0.8 + offset])


def test_a_95_percent_interval_over_seeds() -> None:
    assert interval([1.0]) is None
    lo, hi = interval([0.9, 1.0, 1.1])  # type: ignore[misc]
    assert lo == pytest.approx(1.0 - 4.303 * 0.1 / math.sqrt(3)) and hi == pytest.approx(2.0 - lo)


def test_curves_are_keyed_by_the_harness_source_and_the_torch_version(monkeypatch: pytest.MonkeyPatch) -> None:
    key = cache_key("char_lm", "cpu", (0, 1))
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    baselines._harness_hash.cache_clear()
    assert cache_key("char_lm", "cpu", (0, 1)) != key
    monkeypatch.undo()
    baselines._harness_hash.cache_clear()
    assert cache_key("char_lm", "cpu", (0, 1)) == key
    assert cache_key("char_lm", "cuda:1", (0, 1)).startswith("v4/cuda/char_lm/")


def test_a_missing_curve_is_an_error_naming_the_command() -> None:
    with pytest.raises(ProblemError, match=r"python -m problems.optimizer_discovery.baselines cuda"):
        adamw_curve("char_lm", "cuda", (0, 1))


def test_cached_curves_are_current_and_tuned_over_lr_and_beta2() -> None:
    cached = json.loads(CACHE.read_text())
    for _, name, seeds in jobs("cpu"):
        key = cache_key(name, "cpu", seeds)
        assert key in cached, f"stale or missing curve: {name} (run python -m problems.optimizer_discovery.baselines)"
        curve = cached[key]
        assert curve["budgets"][-1] == 4 * curve["n"]
        for entry in curve["per_budget"]:
            lrs = {lr for lr, _ in entry["configs"]}
            assert {b for _, b in entry["configs"]} == set(BETA2S)
            assert set(LR_GRID) <= lrs and len(lrs) > len(LR_GRID), "refined around the grid's best"
        best = curve_for_seeds(curve, tuple(seeds))["best_loss"]
        assert best[-1] < best[0], (name, best)  # still improving across the budgets


@pytest.mark.parametrize("name", SUITE["select"])
def test_selection_signal_stands_above_seed_noise(name: str) -> None:
    """AdamW's gain from N to 2N is at least 4 standard errors of its loss at N, the standard error taken
    over as many seeds as a candidate is scored on."""
    curve = adamw_curve(name, "cpu", baseline_seeds("cpu", name))
    at_n, at_2n = seed_losses_at(curve, 2), seed_losses_at(curve, 3)
    mean_n, mean_2n = sum(at_n) / len(at_n), sum(at_2n) / len(at_2n)
    std = math.sqrt(sum((x - mean_n) ** 2 for x in at_n) / (len(at_n) - 1))
    standard_error = std / math.sqrt(len(PROBLEM.seeds["select"]))
    assert mean_n - mean_2n >= 4 * standard_error, (name, mean_n - mean_2n, standard_error)


# -- fingerprints and descriptors: behaviour, not scale ------------------------------------------------
def _fingerprint(code: str) -> str:
    return PROBLEM.fingerprint_of({"probe": scale_free(probe(*load_rule(code)))})


def test_fingerprints_see_behaviour_not_spelling_or_scale() -> None:
    adamw = SEEDS["adamw"]
    respelled = adamw.replace("(1 - 0.9) * grad", "grad * (1 - 0.9)")
    rescaled = adamw.replace(
        "return m_hat / (torch.sqrt(v_hat) + 1e-8)", "return 3.7 * m_hat / (torch.sqrt(v_hat) + 1e-8)"
    )
    other = adamw.replace("0.999", "0.99")
    assert respelled != adamw and rescaled != adamw
    assert _fingerprint(respelled) == _fingerprint(adamw) == _fingerprint(rescaled) != _fingerprint(other)


def test_descriptors_describe_the_algorithm() -> None:
    def described(name: str) -> dict[str, float]:
        return behaviour(probe(*load_rule(SEEDS[name])))

    sgd, lion, adam = described("sgd"), described("lion"), described("adam")
    assert sgd["grad_alignment"] == pytest.approx(1.0) and lion["sign_likeness"] == pytest.approx(1.0)
    assert adam["grad_alignment"] < 0.99 and sgd["sign_likeness"] < lion["sign_likeness"]
    scaled = SEEDS["sgd"].replace("direction = grad", "direction = 40.0 * grad")
    assert behaviour(probe(*load_rule(scaled))) == pytest.approx(sgd)


def test_a_wrong_shaped_direction_fails_at_the_fingerprint_as_a_contract_error() -> None:
    code = SEEDS["sgd"].replace("direction = grad", "direction = grad.sum()")
    r = evaluate(EvalJob(1, code, JobKind.FINGERPRINT), ProblemRef(str(FOLDER), {}), LIMITS)
    assert not r.ok and r.failure_kind == "contract" and "must be shaped" in (r.reason or "")


# -- through the real cascade: what a run's child goes through ------------------------------------------
REF = ProblemRef(str(FOLDER), {"seeds": [0, 1]})


def _search(code: str, ref: ProblemRef = REF) -> dict[str, object]:
    r = evaluate(EvalJob(1, code), ref, LIMITS)
    return {"ok": r.ok, "fitness": r.fitness, "kind": r.failure_kind, "reason": r.reason, "metrics": r.metrics}


@pytest.mark.slow
def test_the_search_refines_the_lr_and_reports_intervals_and_compute() -> None:
    r = _search(SEEDS["adamw"])
    assert r["ok"], r["reason"]
    select = r["metrics"]["select"]  # type: ignore[index]
    for task in select["tasks"].values():
        assert task["best_lr"] > 0 and task["val_loss"] < task["initial_loss"]
    assert len(select["per_seed_fitness"]) == 2 and select["interval"][0] <= r["fitness"] <= select["interval"][1]
    assert 0.5 < select["compute_ratio"] < 2.0  # the reference is AdamW itself


@pytest.mark.slow
def test_a_rule_that_goes_uphill_fails_as_diverged() -> None:
    r = _search(SEEDS["sgd"].replace("direction = grad", "direction = -grad"))
    assert not r["ok"] and r["kind"] == "diverged" and "untrained" in str(r["reason"]), r


CHEATS = {p.stem: p.read_text() for p in sorted((Path(__file__).parent / "data" / "optimizer_cheats").glob("*.py"))}


def _cheat(name: str) -> str:
    return CHEATS[name]


@pytest.mark.slow
@pytest.mark.harness
@pytest.mark.parametrize("name", sorted(CHEATS))
def test_a_cheating_rule_gains_nothing_over_the_honest_sgd_seed(name: str) -> None:
    """Each hole of harness 3, driven through the cascade with the static rules out of the way (the
    runtime walls alone): nothing scores above the honest SGD seed; with the static rules the program is
    refused before it runs."""
    honest = _search(SEEDS["sgd"])["fitness"]
    assert isinstance(honest, float)
    got = _search(_cheat(name))
    assert got["fitness"] is None or got["fitness"] <= honest * 1.05, (name, got["fitness"], honest, got["reason"])
    if name in ("subclass", "reading_data"):  # in_place passes them: the copies it is handed are its wall
        with pytest.raises(StaticRuleViolation):
            check_program(_cheat(name), PROBLEM.allowed_imports, PROBLEM.code_rules)


def test_every_hole_of_harness_3_has_a_cheating_rule() -> None:
    assert set(CHEATS) == {"subclass", "in_place", "lr_spy", "forged_output", "reading_data"}


def test_a_user_program_is_scored_like_a_child_and_a_broken_one_gets_one_line(tmp_path: Path) -> None:
    cheat = tmp_path / "subclass.py"
    cheat.write_text(_cheat("subclass"))
    proc = run_cli("baselines", "--program", str(cheat), check=False)
    assert proc.returncode == 2 and "class_definition" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    missing = run_cli("baselines", "--program", str(tmp_path / "nope.py"), check=False)
    assert missing.returncode == 2 and "nope.py" in missing.stderr


@pytest.mark.slow
def test_evolve_baselines_scores_a_program_file_through_the_cascade(tmp_path: Path) -> None:
    mine = tmp_path / "my_rule.py"
    mine.write_text(SEEDS["momentum"])
    rows = json.loads(
        run_cli("baselines", "--program", str(mine), "--option", "seeds=[0]", "--json", timeout=600).stdout
    )
    assert [r["seed"] for r in rows] == ["my_rule"] and rows[0]["fitness"] > 0.25
    assert set(rows[0]["task_scores"]) == {*SUITE["filter"], *SUITE["select"]}


# -- static walls ------------------------------------------------------------------------------------
ESCAPES = {
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
    "as_subclass": "x = grad.as_subclass(type(grad))",
    "three_argument_type": "C = type('C', (), {})",
    "tensor_class": "C = torch.Tensor",
    "hook": "grad.register_hook(print)",
    "data_alias": "param.data.zero_()",
    "class_statement": "class C:\n        pass",
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_rules_cannot_reach_the_harness(name: str) -> None:
    """Static rules refuse the escapes before anything runs..."""
    code = SEEDS["sgd"].replace("    direction = grad", f"    {ESCAPES[name]}\n    direction = grad")
    with pytest.raises(StaticRuleViolation):
        check_program(code, PROBLEM.allowed_imports, PROBLEM.code_rules)


def test_the_runtime_torch_of_a_rule_is_an_allow_list() -> None:
    """...and the torch a rule imports at run time is a view that offers tensor functions only, holds no
    reference to the real module, and no class a rule could subclass (a second wall)."""
    init_state, update = load_rule(SEEDS["adamw"])
    view = update.__globals__["torch"]  # type: ignore[attr-defined]
    for name in (
        "sys",
        "os",
        "package",
        "cuda",
        "from_file",
        "load",
        "save",
        "nn",
        "utils",
        "library",
        "hub",
        "set_num_threads",
        "manual_seed",
        "Tensor",
        "autograd",
        "Size",
    ):
        with pytest.raises(AttributeError, match="not available to update rules"):
            getattr(view, name)
    with pytest.raises(AttributeError):
        view.zeros_like = None
    assert all(not isinstance(v, type(torch)) or v is view for v in vars(view).values())
    assert view.linalg.matrix_norm is torch.linalg.matrix_norm and view.zeros_like is torch.zeros_like
    builtins = update.__globals__["__builtins__"]  # type: ignore[attr-defined]
    assert not {"type", "object", "super", "classmethod", "isinstance"} & set(builtins)
    with pytest.raises(AttributeError):
        builtins["getattr"](view.zeros_like, "__self__")


def test_every_zoo_rule_runs_inside_the_allow_list() -> None:
    for name, code in SEEDS.items():
        assert probe(*load_rule(code)), name


# -- statistics ----------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.harness
def test_the_zoo_scores_reproduce_on_other_seeds() -> None:
    """Every seed program's search fitness on seeds {0,1} and on {2,3} agree within 10%."""
    scores = []
    for seeds in ("[0, 1]", "[2, 3]"):
        proc = run_cli("baselines", "--option", f"seeds={seeds}", "--json", timeout=1800)
        scores.append({row["seed"]: row["fitness"] for row in json.loads(proc.stdout)})
    assert set(scores[0]) == set(SEEDS)
    for name in SEEDS:
        a, b = scores[0][name], scores[1][name]
        assert a is not None and b is not None and abs(a / b - 1) <= 0.10, (name, a, b)


def test_tier_seeds_are_those_the_baseline_was_measured_on() -> None:
    for role in ("select", "validate", "confirm", "heldout"):
        assert set(PROBLEM.seeds[role]) <= set(TIER_SEEDS[role])
        for task in PROBLEM.tasks_for(role):
            assert set(PROBLEM.seeds[role]) <= set(baseline_seeds("cpu", task))


@pytest.mark.slow
@pytest.mark.harness
@pytest.mark.parametrize("stage", ["filter", "select"])
def test_rescaling_tuned_adamw_gains_nothing(stage: str) -> None:
    """Same LR treatment for both sides: tuned AdamW's direction times 10^(k/8), k = -3..3, through the
    candidates' sweep and refinement, scores within 3% of 1.0 (benchmarks/lr_scale.py also runs the
    validate and held-out stages)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from lr_scale import KS, scores

    for k in KS:
        assert scores(stage, k) == pytest.approx(1.0, abs=0.03), (stage, k)


def test_trusted_losses_are_right_while_two_evaluations_score_at_once() -> None:
    """The process backend scores two evaluations at once in threads of the controller; a task's model is
    shared, and torch.func.functional_call swaps its tensors in place, so the trusted side must not measure
    one program's losses with the other's parameters (it did: adam scored 0.25 on char_lm beside lion)."""
    from concurrent.futures import ThreadPoolExecutor

    from problems.optimizer_discovery.problem import encode

    problem = load_problem_folder(FOLDER, {})
    task, seeds = get_task("char_lm"), problem.seeds["select"]

    def entry(shift: int) -> dict[str, Any]:
        return {
            "params": {
                str(s): {n: encode(p.unsqueeze(0)) for n, p in task.init_params(s + shift).items()} for s in seeds
            }
        }

    entries = [entry(0), entry(50)]
    expected = [problem._measured("select", "char_lm", e, [1e-3]) for e in entries]
    assert expected[0] != expected[1]
    for _ in range(3):
        problem._losses.clear()
        with ThreadPoolExecutor(2) as pool:
            got = list(pool.map(lambda i: problem._measured("select", "char_lm", entries[i % 2], [1e-3]), range(20)))
        assert got == [expected[i % 2] for i in range(20)]


def test_a_jailed_training_is_bit_reproducible_warm_or_fresh() -> None:
    """A number the zoo prints stands on one evaluation per program: the parameters a stage returns must be
    the same bytes whichever server trains them (a warm server's second job, a fresh one), as the trusted
    losses are under threads (above). A rule near its stability edge would turn any difference into a score."""
    from evaluators.sandbox import Sandbox

    code = SEEDS["rmsprop"]
    stage = next(s for s in PROBLEM.stages if s.name == "filter")

    def digests(warm: bool) -> dict[str, bytes]:
        run = Sandbox(EvaluatorConfig(warm_start=warm, timeout_s=120)).run(str(FOLDER), {}, code, stage)
        assert run.artifacts is not None, run.message
        return {
            name: b"".join(p["data"] for s in sorted(e["params"]) for _, p in sorted(e["params"][s].items()))
            for name, e in run.artifacts["tasks"].items()
        }

    first = digests(warm=True)
    assert set(first) == set(PROBLEM.tasks_for("filter"))
    assert digests(warm=True) == first
    assert digests(warm=False) == first
