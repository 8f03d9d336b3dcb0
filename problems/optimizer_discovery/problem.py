"""optimizer_discovery: evolve update rules that train networks faster than a tuned AdamW (harness v3).

Candidate contract (the EVOLVE-BLOCK of a module that may import only ``torch`` and ``math``)::

    def init_state(param: Tensor) -> dict[str, Tensor]          # per-parameter state
    def update(param, grad, state, step) -> (direction, new_state)

``step`` is the 1-based step (a Python int). The rule never sees the learning rate: the harness
sweeps the base LR over a fixed log grid (vectorised with vmap) and applies
``p <- p - lr * s(t) * direction - lr * s(t) * wd * p`` with its own warmup + cosine schedule
``s(t)`` and decoupled weight decay. The harness owns data, model, loss, seeds and budgets.

Stage roles: ``fingerprint`` (the rule's directions on fixed probe tensors: a child that computes
what an earlier program computes is not trained), ``filter`` (cheap: a noisy quadratic and
logistic regression; a rule that makes no progress on either stops there), ``select`` (an MLP on
digits, a character-level transformer, a teacher-student classifier: the search fitness),
``validate`` (a wider char LM over
more steps and a deeper teacher-student net on 3 seeds: picks the champion), ``heldout`` (report
only: regression, a CNN, a char LM on Python source, a wider char LM).

Fitness (AlgoPerf-style): per task, the AdamW budget needed to reach the candidate's validation
loss at budget N, divided by N (interpolated in log-budget on the running-min envelope of the tuned
AdamW curve at N/4, N/2, N, 2N on the same seeds; clipped to [1/4, 4]; divergence 1/4). Fitness is
the geometric mean over the stage's tasks. Validation losses are computed here, in the evaluator's
process, from the parameters the candidate's run returns.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evolve.problem import CodeRules, ContractError, Descriptor, Primitives, Problem, ProblemError, Stage, StageScore
from problems.optimizer_discovery.baselines import BASELINE_SEEDS, HARNESS_VERSION, adamw_curve, curve_for_seeds
from problems.optimizer_discovery.restricted import BANNED_ATTRIBUTES, rule_namespace
from problems.optimizer_discovery.tasks import SUITES, get_task
from problems.optimizer_discovery.train import (
    LR_GRID,
    RuleContractError,
    best_loss,
    budget_ratio,
    lr_means,
    probe,
    run_rule,
    val_losses,
)

DEFAULT_SEEDS = {"filter": (0, 1), "select": (0, 1), "validate": (0, 1, 2), "heldout": (0, 1, 2)}
OPTIONS = ("seeds", "validate_seeds", "heldout_seeds", "device", "suite")

DESCRIPTION = """\
Discover an optimizer update rule for neural-network training. Write two functions:

    def init_state(param):  # param: a torch.Tensor (one parameter tensor of the model)
        return {...}        # dict of state tensors for this parameter (may be empty)

    def update(param, grad, state, step):
        ...                 # step: int starting at 1
        return direction, new_state   # direction: a tensor shaped like param

Only `torch` and `math` may be imported. The rule never sees the learning rate: the harness applies
param <- param - lr * s(t) * direction - lr * s(t) * wd * param, with its own warmup + cosine
schedule s(t) and decoupled weight decay wd, and sweeps the base lr over a log grid from 1e-4 to 1,
so the rule must not add its own schedule and gains nothing from rescaling its direction by a
constant. Use only tensor operations (no Python branching on tensor values) so that the sweep can
be vectorised. 2-D parameters (param.ndim == 2) are weight matrices. Fitness is the geometric mean
over tasks (an MLP on digits, a small character-level transformer, a teacher-student classifier) of
the budget a tuned AdamW (learning rate and beta2 tuned) needs to match the rule's validation loss,
divided by the rule's budget: 1.0 equals tuned AdamW, higher is better.
"""


def encode(t: torch.Tensor) -> dict[str, Any]:
    """A tensor as an artifact: its shape and raw float32 bytes (written beside the result, no base64)."""
    arr = t.detach().to("cpu", torch.float32).contiguous().numpy()
    return {"shape": list(arr.shape), "data": arr.tobytes()}


def decode(d: Any) -> torch.Tensor:
    if not isinstance(d, dict) or not isinstance(d.get("data"), bytes) or not isinstance(d.get("shape"), list):
        raise ContractError("malformed parameter artifact")
    shape = [int(x) for x in d["shape"]]
    if len(d["data"]) != 4 * math.prod(shape):
        raise ContractError("parameter artifact has the wrong size")
    return torch.from_numpy(np.frombuffer(d["data"], dtype=np.float32).copy()).reshape(shape)


def resolve_device(requested: str) -> str:
    """'cpu', 'cuda[:n]' or 'auto' -> the device to train on here. Checking never initialises CUDA (a warm
    server that did could not fork candidates that use it)."""
    if requested == "cpu":
        return "cpu"
    if requested != "auto" and not requested.startswith("cuda"):
        raise ProblemError(f"problem.options.device: {requested!r} is not cpu, cuda or auto")
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    if torch.cuda.is_available():
        return "cuda" if requested == "auto" else requested
    if requested == "auto":
        return "cpu"
    raise ContractError(f"problem.options.device: {requested!r} but no CUDA device is visible to this evaluator "
                        "(CUDA_VISIBLE_DEVICES is set per evaluation by Ray from evaluator.num_gpus)")


def load_rule(code: str) -> tuple[Any, Any]:
    namespace = rule_namespace()  # its torch and math are restricted views (see restricted.py)
    exec(compile(code, "candidate.py", "exec"), namespace)
    init_state, update = namespace.get("init_state"), namespace.get("update")
    if not callable(init_state) or not callable(update):
        raise ContractError("the program must define init_state(param) and update(param, grad, state, step)")
    return init_state, update


def _seeds(value: Any, role: str) -> tuple[int, ...]:
    seeds = tuple(int(s) for s in value)
    allowed = BASELINE_SEEDS[role]
    if not seeds or not set(seeds) <= set(allowed):
        raise ProblemError(f"problem.options: {role} seeds {list(seeds)} must be a non-empty subset of the "
                           f"baseline's seeds {list(allowed)}")
    return seeds


class OptimizerDiscovery(Problem):
    name = "optimizer_discovery"
    version = f"{HARNESS_VERSION}.1"  # 3.1: the curve is paired at N only (curve_for_seeds); curves unchanged
    description = DESCRIPTION
    descriptors = (
        Descriptor("state_tensors", 0, 4, 5, "state tensors per parameter"),
        Descriptor("best_log10_lr", -4, 0, 9, "log10 of the best base LR, averaged over tasks"),
    )
    fingerprint = Stage("fingerprint", timeout_s=30)
    # The filter only stops rules that make no progress at all: 0.25 is the floor of a task's score
    # (divergence, or no training), and a real optimizer such as Lion scores ~0.3 on these two tasks.
    stages = (Stage("filter", threshold=0.26, timeout_s=120), Stage("select", timeout_s=300))
    validate = Stage("validate", timeout_s=900)
    heldout = Stage("heldout", timeout_s=1800)
    allowed_imports = frozenset({"torch", "math"})
    code_rules = CodeRules(banned_attributes=BANNED_ATTRIBUTES, private_attributes=False, attribute_assignment=False)
    primitives = Primitives(
        binary_ops=("+", "-", "*", "/"),
        calls=("torch.sqrt", "torch.sign", "torch.abs", "torch.square", "torch.tanh", "torch.rsqrt"),
        constants=(0.9, 0.99, 0.999, 0.1, 0.01, 0.001, 1e-8, 0.5, 1.0, 2.0),
        # The idioms update rules are built from (EMA updates, division with an epsilon, clipping,
        # norms); where to apply them, and to what, is left to the search.
        templates=(
            "{c} * {x} + (1 - {c}) * {n}",  # EMA update of {x} toward {n}
            "{x} / (torch.abs({n}) + {c})",  # division with an epsilon
            "torch.clamp({x}, -{c}, {c})",  # clipping
            "{x} / (torch.sqrt(torch.mean({x} * {x})) + 1e-8)",  # normalise by the RMS norm
        ),
    )

    def __init__(self, folder: Path, options: dict[str, Any]) -> None:
        super().__init__(folder, options)
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise ProblemError(f"problem.options: unknown option(s) {sorted(unknown)}; known: {', '.join(OPTIONS)}")
        self.seeds = {
            "filter": _seeds(options.get("seeds", DEFAULT_SEEDS["filter"]), "filter"),
            "select": _seeds(options.get("seeds", DEFAULT_SEEDS["select"]), "select"),
            "validate": _seeds(options.get("validate_seeds", DEFAULT_SEEDS["validate"]), "validate"),
            "heldout": _seeds(options.get("heldout_seeds", DEFAULT_SEEDS["heldout"]), "heldout"),
        }
        self.requested_device = str(options.get("device", "cpu"))
        if self.requested_device not in ("cpu", "auto") and not self.requested_device.startswith("cuda"):
            raise ProblemError(f"problem.options.device: {self.requested_device!r} is not cpu, cuda or auto")
        self.suite = str(options.get("suite", "cpu"))
        if self.suite not in SUITES:
            raise ProblemError(f"problem.options.suite: {self.suite!r} is not one of {', '.join(SUITES)}")

    def seed_programs(self) -> dict[str, str]:
        seeds_dir = self.folder / "seeds"
        order = ["sgd"] + sorted(p.stem for p in seeds_dir.glob("*.py") if p.stem != "sgd")
        return {name: (seeds_dir / f"{name}.py").read_text() for name in order}

    @property
    def device(self) -> str:
        """Where this process trains and scores: resolved where it is used (a controller without a GPU can
        drive candidates that run on one)."""
        if not hasattr(self, "_device"):
            self._device = resolve_device(self.requested_device)
        return self._device

    def tasks_for(self, stage: str) -> tuple[str, ...]:
        tasks = SUITES[self.suite].get(stage)
        if tasks is None:
            raise ContractError(f"unknown stage {stage!r}")
        return tasks

    def baseline(self, task: str, stage: str) -> dict[str, Any]:
        """The tuned AdamW curve of a task, for the seeds this stage scores candidates on."""
        return curve_for_seeds(adamw_curve(task, self.device, BASELINE_SEEDS[stage]), self.seeds[stage])

    # -- inside the sandbox ---------------------------------------------------------------------
    def prepare(self) -> None:
        """Warm up a warm server before it forks candidates: build the search stages' data and run AdamW a
        few steps on each. On a GPU only the CPU side is warmed: a server that touched CUDA could not fork
        children that use it (each child initialises its own context)."""
        from problems.optimizer_discovery.baselines import adamw_init, adamw_update

        torch.set_num_threads(1)
        if self.requested_device != "cpu":
            import sklearn.datasets  # noqa: F401  (the imports and corpora, not the tensors on the device)

            return
        for stage in ("filter", "select"):
            for name in self.tasks_for(stage):
                run_rule(get_task(name, "cpu"), lambda: (adamw_init, adamw_update(0.99)), (0,), 2)

    def run_stage(self, code: str, stage: str, workdir: Path) -> dict[str, Any]:
        torch.set_num_threads(1)
        init_state, update = load_rule(code)  # fails early on a broken program; every run gets a fresh copy
        try:
            if stage == "fingerprint":
                return {"probe": probe(init_state, update)}
            state = init_state(torch.zeros(4, 3))
            if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
                raise ContractError("init_state must return a dict of tensors")
            out: dict[str, Any] = {"state_tensors": len(state), "tasks": {}}
            for name in self.tasks_for(stage):
                task = get_task(name, self.device)
                t0 = time.perf_counter()
                params_by_seed, vectorised = run_rule(task, lambda: load_rule(code), self.seeds[stage], task.steps)
                # Only the best LR's parameters go back (its index is the same for every seed); the trusted
                # side measures their loss itself. The other LRs' losses are reported, for information.
                losses = [val_losses(task, params_by_seed[s]) for s in self.seeds[stage]]
                _, best = best_loss(losses)
                out["tasks"][name] = {
                    "seconds": time.perf_counter() - t0, "vectorised": vectorised, "best_index": best,
                    "losses": [[x if math.isfinite(x) else None for x in seed] for seed in losses],
                    "params": {str(s): {n: encode(p[best]) for n, p in params.items()}
                               for s, params in params_by_seed.items()},
                }
        except RuleContractError as exc:
            raise ContractError(str(exc)) from None
        return out

    # -- trusted, in the evaluator's process ---------------------------------------------------------
    def score(self, code: str, stage: str, artifacts: dict[str, Any]) -> StageScore:
        tasks = artifacts.get("tasks")
        if not isinstance(tasks, dict) or set(tasks) != set(self.tasks_for(stage)):
            raise ContractError(f"expected results for tasks {self.tasks_for(stage)}")
        seeds = self.seeds[stage]
        metrics: dict[str, Any] = {}
        log_lrs = []
        for name in self.tasks_for(stage):
            task = get_task(name, self.device)
            entry = tasks[name]
            params = entry.get("params") if isinstance(entry, dict) else None
            if not isinstance(params, dict) or set(params) != {str(s) for s in seeds}:
                raise ContractError(f"task {name}: expected parameters for seeds {seeds}")
            idx = entry.get("best_index")
            if not isinstance(idx, int) or not 0 <= idx < len(LR_GRID):
                raise ContractError(f"task {name}: no best LR index")
            reference = task.init_params(0)
            per_seed = []
            for seed in seeds:
                if not isinstance(params[str(seed)], dict):
                    raise ContractError(f"task {name}: malformed parameters for seed {seed}")
                tensors = {n: decode(params[str(seed)].get(n)).to(task.device) for n in reference}
                for n, ref in reference.items():
                    if tuple(tensors[n].shape) != tuple(ref.shape):
                        raise ContractError(f"task {name}: parameter {n} has the wrong shape")
                per_seed.append(val_loss_of(task, tensors))  # measured here, never taken from the child
            loss = sum(per_seed) / len(per_seed)
            curve = self.baseline(name, stage)
            at_n = curve["budgets"].index(curve["n"])
            claimed = _claimed_means(entry.get("losses"))
            robust = sum(1 for m in claimed if math.isfinite(m) and math.isfinite(loss) and m <= loss * 1.1)
            log_lrs.append(math.log10(LR_GRID[idx]))
            metrics[name] = {"score": budget_ratio(loss, curve), "val_loss": loss, "best_lr": LR_GRID[idx],
                             "adamw_val_loss_at_n": curve["best_loss"][at_n],
                             "adamw_config_at_n": curve["best_config"][at_n],
                             "lr_robustness": robust, "seconds": float(entry.get("seconds", 0.0)),
                             "vectorised": bool(entry.get("vectorised", False))}
        scores = [metrics[n]["score"] for n in self.tasks_for(stage)]
        fitness = math.exp(sum(math.log(s) for s in scores) / len(scores))
        state_tensors = artifacts.get("state_tensors", 0)
        descriptors = {"state_tensors": float(state_tensors) if isinstance(state_tensors, int) else 0.0,
                       "best_log10_lr": sum(log_lrs) / len(log_lrs)}
        return StageScore(fitness, {"tasks": metrics, "stage_fitness": fitness, "seeds": list(seeds)}, descriptors)


def val_loss_of(task: Any, params: dict[str, torch.Tensor]) -> float:
    return val_losses(task, {n: p.unsqueeze(0) for n, p in params.items()})[0]


def _claimed_means(losses: Any) -> list[float]:
    """The child's own per-LR losses (information only: the score never rests on them)."""
    try:
        return lr_means([[math.inf if x is None else float(x) for x in seed] for seed in losses])
    except (TypeError, ValueError, IndexError, ZeroDivisionError):
        return []


def make_problem(folder: Path, options: dict[str, Any]) -> Problem:
    return OptimizerDiscovery(folder, options)
