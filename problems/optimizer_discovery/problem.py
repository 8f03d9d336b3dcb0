"""optimizer_discovery: evolve update rules that train networks faster than a tuned AdamW.

Candidate contract (the EVOLVE-BLOCK of a module that may import only ``torch`` and ``math``)::

    def init_state(param: Tensor) -> dict[str, Tensor]          # per-parameter state
    def update(param, grad, state, lr, step) -> (new_param, new_state)

``lr`` is the sweep's base LR as a 0-d tensor and ``step`` the 1-based step (a Python int); the
harness scales the step the rule takes (``new_param - param``) by its warmup + cosine schedule. The harness owns data, model, loss, schedule, decoupled weight decay,
seeds and budgets, and sweeps the rule over a fixed log grid of base LRs (vectorised with vmap).

Stages: ``filter`` (cheap: a noisy quadratic and logistic regression) stops rules scoring below
0.3; ``select`` (an MLP on digits and a character-level transformer LM) gives the fitness; held-out
tasks (``heldout``) are never selected on.

Fitness (AlgoPerf-style): per task, the AdamW budget needed to reach the candidate's validation
loss at budget N, divided by N (interpolated in log-budget on the running-min envelope of AdamW's
tuned curve at N/4, N/2, N, 2N; clipped to [1/4, 4]; divergence 1/4). Fitness is the geometric
mean over the stage's tasks, so AdamW scores 1.0 by construction. Validation losses are
computed here, in the evaluator's process, from the parameters the candidate's run returns.
"""

from __future__ import annotations

import base64
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evolve.problem import ContractError, Descriptor, Primitives, Problem, Stage, StageScore
from problems.optimizer_discovery.baselines import HARNESS_VERSION, adamw_curve, curve_for_seeds
from problems.optimizer_discovery.tasks import get_task
from problems.optimizer_discovery.train import LR_GRID, best_loss, budget_ratio, run_rule, val_losses

CANDIDATE_SEEDS = (0, 1)
STAGE_TASKS = {
    "filter": ("quadratic", "logreg"),
    "select": ("mlp_digits", "char_lm"),
}
HELDOUT_TASKS = ("teacher_student", "char_lm_w64", "char_lm_w128")

DESCRIPTION = """\
Discover an optimizer update rule for neural-network training. Write two functions:

    def init_state(param):  # param: a torch.Tensor (one parameter tensor of the model)
        return {...}        # dict of state tensors for this parameter (may be empty)

    def update(param, grad, state, lr, step):
        ...                 # lr: 0-d tensor (already scheduled), step: int starting at 1
        return new_param, new_state

Only `torch` and `math` may be imported. The harness multiplies the step your rule takes
(new_param - param) by a warmup + cosine schedule and applies decoupled weight decay itself, and sweeps the base lr over a log grid from 1e-4 to 1, so the rule
must not add its own schedule. Use only tensor operations (no Python branching on tensor values)
so that the sweep can be vectorised. 2-D parameters (param.ndim == 2) are weight matrices.
Fitness is the geometric mean over tasks of the AdamW budget needed to match the rule's
validation loss, divided by the rule's budget: 1.0 equals a tuned AdamW, higher is better.
"""


def encode(t: torch.Tensor) -> dict[str, Any]:
    arr = t.detach().to(torch.float32).contiguous().numpy()
    return {"shape": list(arr.shape), "b64": base64.b64encode(arr.tobytes()).decode()}


def decode(d: Any) -> torch.Tensor:
    if not isinstance(d, dict) or not isinstance(d.get("b64"), str) or not isinstance(d.get("shape"), list):
        raise ContractError("malformed parameter artifact")
    raw = base64.b64decode(d["b64"], validate=True)
    shape = [int(x) for x in d["shape"]]
    if len(raw) != 4 * math.prod(shape):
        raise ContractError("parameter artifact has the wrong size")
    return torch.from_numpy(np.frombuffer(raw, dtype=np.float32).copy()).reshape(shape)


def load_rule(code: str) -> tuple[Any, Any]:
    namespace: dict[str, Any] = {"__name__": "candidate"}
    exec(compile(code, "candidate.py", "exec"), namespace)
    init_state, update = namespace.get("init_state"), namespace.get("update")
    if not callable(init_state) or not callable(update):
        raise ContractError("the program must define init_state(param) and update(param, grad, state, lr, step)")
    return init_state, update


class OptimizerDiscovery(Problem):
    name = "optimizer_discovery"
    version = HARNESS_VERSION
    description = DESCRIPTION
    descriptors = (
        Descriptor("state_tensors", 0, 4, 5, "state tensors per parameter"),
        Descriptor("best_log10_lr", -4, 0, 9, "log10 of the best base LR, averaged over tasks"),
    )
    stages = (Stage("filter", threshold=0.3, timeout_s=120), Stage("select", timeout_s=300))
    heldout = Stage("heldout", timeout_s=1200)
    allowed_imports = frozenset({"torch", "math"})
    primitives = Primitives(
        binary_ops=("+", "-", "*", "/"),
        calls=("torch.sqrt", "torch.sign", "torch.abs", "torch.square", "torch.tanh", "torch.rsqrt"),
        constants=(0.9, 0.99, 0.999, 0.1, 0.01, 0.001, 1e-8, 0.5, 1.0, 2.0),
        # The idioms update rules are built from (issue 4's list: EMA updates, division with an
        # epsilon, clipping, norms); where to apply them, and to what, is left to the search.
        templates=(
            "{c} * {x} + (1 - {c}) * {n}",  # EMA update of {x} toward {n}
            "{x} / (torch.abs({n}) + {c})",  # division with an epsilon
            "torch.clamp({x}, -{c}, {c})",  # clipping
            "{x} / (torch.sqrt(torch.mean({x} * {x})) + 1e-8)",  # normalise by the RMS norm
        ),
    )

    def __init__(self, folder: Path, options: dict[str, Any]) -> None:
        super().__init__(folder, options)
        unknown = set(options) - {"seeds"}
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)}; known: seeds")
        self.seeds = tuple(int(s) for s in options.get("seeds", CANDIDATE_SEEDS))

    def seed_programs(self) -> dict[str, str]:
        seeds_dir = self.folder / "seeds"
        order = ["sgd"] + sorted(p.stem for p in seeds_dir.glob("*.py") if p.stem != "sgd")
        return {name: (seeds_dir / f"{name}.py").read_text() for name in order}

    def tasks_for(self, stage: str) -> tuple[str, ...]:
        if stage == "heldout":
            return HELDOUT_TASKS
        if stage not in STAGE_TASKS:
            raise ContractError(f"unknown stage {stage!r}")
        return STAGE_TASKS[stage]

    # -- inside the sandbox ---------------------------------------------------------------------
    def prepare(self) -> None:
        """Build every selection task's data and run AdamW a few steps on each (lazy torch set-up)."""
        from problems.optimizer_discovery.baselines import adamw_init, adamw_update

        torch.set_num_threads(1)
        for tasks in STAGE_TASKS.values():
            for name in tasks:
                run_rule(get_task(name), adamw_init, adamw_update, (0,), 2)

    def run_stage(self, code: str, stage: str, workdir: Path) -> dict[str, Any]:
        torch.set_num_threads(1)
        init_state, update = load_rule(code)
        probe = init_state(torch.zeros(4, 3))
        if not isinstance(probe, dict) or not all(isinstance(v, torch.Tensor) for v in probe.values()):
            raise ContractError("init_state must return a dict of tensors")
        out: dict[str, Any] = {"state_tensors": len(probe), "tasks": {}}
        for name in self.tasks_for(stage):
            task = get_task(name)
            t0 = time.perf_counter()
            params_by_seed, vectorised = run_rule(task, init_state, update, self.seeds, task.steps)
            out["tasks"][name] = {
                "seconds": time.perf_counter() - t0,
                "vectorised": vectorised,
                "params": {str(s): {n: encode(p) for n, p in params.items()} for s, params in params_by_seed.items()},
            }
        return out

    # -- trusted, in the evaluator's process ---------------------------------------------------------
    def score(self, code: str, stage: str, artifacts: dict[str, Any]) -> StageScore:
        tasks = artifacts.get("tasks")
        if not isinstance(tasks, dict) or set(tasks) != set(self.tasks_for(stage)):
            raise ContractError(f"expected results for tasks {self.tasks_for(stage)}")
        metrics: dict[str, Any] = {}
        log_lrs = []
        for name in self.tasks_for(stage):
            task = get_task(name)
            entry = tasks[name]
            params = entry.get("params") if isinstance(entry, dict) else None
            if not isinstance(params, dict) or set(params) != {str(s) for s in self.seeds}:
                raise ContractError(f"task {name}: expected parameters for seeds {self.seeds}")
            reference = task.init_params(0)
            losses = []
            for seed in self.seeds:
                stacked = {n: decode(params[str(seed)].get(n)) for n in reference}
                for n, ref in reference.items():
                    if tuple(stacked[n].shape) != (len(LR_GRID), *ref.shape):
                        raise ContractError(f"task {name}: parameter {n} has the wrong shape")
                losses.append(val_losses(task, stacked))
            loss, idx = best_loss(losses)
            curve = curve_for_seeds(adamw_curve(name), self.seeds)
            ratio = budget_ratio(loss, curve)
            means = [sum(s[i] for s in losses) / len(losses) for i in range(len(LR_GRID))]
            robust = sum(1 for m in means if math.isfinite(m) and math.isfinite(loss) and m <= loss * 1.1)
            log_lrs.append(math.log10(LR_GRID[idx]))
            metrics[name] = {"score": ratio, "val_loss": loss, "best_lr": LR_GRID[idx],
                             "adamw_val_loss_at_n": curve["best_loss"][curve["budgets"].index(curve["n"])],
                             "lr_robustness": robust, "seconds": float(entry.get("seconds", 0.0)),
                             "vectorised": bool(entry.get("vectorised", False))}
        scores = [metrics[n]["score"] for n in self.tasks_for(stage)]
        fitness = math.exp(sum(math.log(s) for s in scores) / len(scores))
        descriptors = {"state_tensors": float(artifacts.get("state_tensors", 0)),
                       "best_log10_lr": sum(log_lrs) / len(log_lrs)}
        return StageScore(fitness, {"tasks": metrics, "stage_fitness": fitness}, descriptors)


def make_problem(folder: Path, options: dict[str, Any]) -> Problem:
    return OptimizerDiscovery(folder, options)
