"""optimizer_discovery: evolve update rules that train networks faster than a tuned AdamW (harness 4).

Candidate contract (the EVOLVE-BLOCK of a module that may import only ``torch`` and ``math``)::

    def init_state(param: Tensor) -> dict[str, Tensor]                  # per-parameter state
    def update(param, grad, state, step, total_steps) -> (direction, new_state)

``step`` is the 1-based step and ``total_steps`` the run's budget N (Python ints; a rule written for
harness 3 without ``total_steps`` still runs). The rule is handed copies of the parameter and the
gradient; the direction and every state entry must be plain float tensors shaped like the parameter
(checked exactly). The harness sweeps the base LR over a log grid and then refines it around the best
grid point (the same treatment the AdamW baseline gets), and applies
``p <- p - lr * s(t) * direction - lr * s(t) * wd * p`` with its own warmup + cosine schedule ``s(t)``
and decoupled weight decay. It owns data, model, loss, seeds and budgets.

Where trust lies: the candidate's process only trains and hands back the parameters of every LR it
was asked to train (raw float32 bytes). The validation losses, the best-LR choice, the refinement
around it, divergence, and every score are computed here, on the trusted side, from data the
candidate's process never builds.

Stage roles and tiers (docs/problems.md has the table): ``fingerprint`` (the rule's scale-free
directions on fixed probe tensors), ``filter`` (a noisy quadratic and a small teacher regression: a
gate), ``select`` (an MLP on digits, a character LM, a teacher-student classifier: the search
fitness), ``validate`` (four tasks on other data, seeds and architecture families: picks the
champion), ``confirm`` (the validate tasks on fresh seeds: the champion's reported number),
``heldout`` (report only; includes a 1000-step task).

Fitness (AlgoPerf-style): per task, the AdamW budget needed to reach the candidate's validation loss at
budget N, divided by N (interpolated in log-budget on the tuned AdamW curve measured from N/4 to 4N on
the same seeds; clipped to [1/4, 4]). A stage's fitness is the geometric mean over its tasks, with a 95%
interval over seeds. A task on which no LR gets below the loss of the untrained model fails the stage
as ``diverged``.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evolve.problem import (
    BlockTypes,
    CodeRules,
    ContractError,
    Descriptor,
    Kind,
    Primitives,
    Problem,
    ProblemError,
    Signature,
    Stage,
    StageScore,
    StateEntries,
)
from problems.optimizer_discovery.baselines import (
    HARNESS_VERSION,
    adamw_curve,
    baseline_seeds,
    curve_for_seeds,
    missing,
)
from problems.optimizer_discovery.probe import behaviour, probe, scale_free
from problems.optimizer_discovery.restricted import BANNED_ATTRIBUTES, BANNED_NAMES, rule_namespace
from problems.optimizer_discovery.scoring import budget_ratio
from problems.optimizer_discovery.suites import SEEDS, SUITES, get_task, tasks_of
from problems.optimizer_discovery.train import (
    LR_GRID,
    RuleContractError,
    initial_loss,
    lr_means,
    refined,
    run_rule,
    val_losses,
)

DEFAULT_SEEDS = {
    "filter": (0, 1),
    "select": (0, 1),
    "validate": SEEDS["validate"],
    "confirm": SEEDS["confirm"],
    "heldout": SEEDS["heldout"],
}
OPTIONS = ("seeds", "validate_seeds", "heldout_seeds", "device", "suite", "compute_penalty")
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}

DESCRIPTION = """\
Discover an optimizer update rule for neural-network training. Write two functions:

    def init_state(param):  # param: a torch.Tensor (one parameter tensor of the model)
        return {...}        # dict of float state tensors for this parameter (may be empty)

    def update(param, grad, state, step, total_steps):
        ...                 # step: int from 1 to total_steps (the run's budget)
        return direction, new_state   # direction: a float tensor shaped like param

Only `torch` and `math` may be imported; no classes. The rule never sees the learning rate: the harness
applies param <- param - lr * s(t) * direction - lr * s(t) * wd * param, with its own warmup + cosine
schedule s(t) and decoupled weight decay wd, sweeps the base lr over a log grid from 1e-4 to 1 and refines
it around the best point, so rescaling the direction by a constant gains nothing. The rule may use step and
total_steps (e.g. for its own warmup or averaging). Use only tensor operations (no Python branching on
tensor values) so that the sweep can be vectorised. 2-D parameters (param.ndim == 2) are weight matrices.
Fitness is the geometric mean over tasks (an MLP on digits, a small character-level transformer, a
teacher-student classifier) of the budget a tuned AdamW (learning rate and beta2 tuned) needs to match the
rule's validation loss, divided by the rule's budget: 1.0 equals tuned AdamW, higher is better. The
champion is chosen on other tasks (other data, recurrent and convolutional nets): a rule tuned to the shapes
of the search tasks gains nothing there.
"""


def encode(t: torch.Tensor) -> dict[str, Any]:
    """A tensor as an artifact: its shape and raw float32 bytes (sent as bytes, no base64)."""
    arr = t.detach().to("cpu", torch.float32).contiguous().numpy()
    return {"shape": list(arr.shape), "data": arr.tobytes()}


def decode(d: Any, shape: tuple[int, ...]) -> torch.Tensor:
    """A parameter artifact, which must be exactly ``shape`` float32 bytes."""
    if not isinstance(d, dict) or not isinstance(d.get("data"), bytes) or d.get("shape") != list(shape):
        raise ContractError(f"malformed parameter artifact (expected shape {list(shape)})")
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
    raise ContractError(
        f"problem.options.device: {requested!r} but no CUDA device is visible to this evaluator "
        "(CUDA_VISIBLE_DEVICES is set per evaluation by Ray from evaluator.num_gpus)"
    )


def load_rule(code: str) -> tuple[Any, Any]:
    namespace = rule_namespace()  # its torch and math are restricted views (see restricted.py)
    exec(compile(code, "candidate.py", "exec"), namespace)
    init_state, update = namespace.get("init_state"), namespace.get("update")
    if not callable(init_state) or not callable(update):
        raise ContractError(
            "the program must define init_state(param) and update(param, grad, state, step, total_steps)"
        )
    return init_state, update


def _seeds(value: Any, role: str) -> tuple[int, ...]:
    seeds = tuple(int(s) for s in value)
    allowed = SEEDS[role]
    if not seeds or not set(seeds) <= set(allowed):
        raise ProblemError(
            f"problem.options: {role} seeds {list(seeds)} must be a non-empty subset of the "
            f"baseline's {role} seeds {list(allowed)}"
        )
    return seeds


def interval(values: list[float]) -> list[float] | None:
    """A 95% interval (Student t) of the mean of ``values``; None for one value."""
    n = len(values)
    if n < 2 or not all(math.isfinite(v) for v in values):
        return None
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = T_975.get(n - 1, 1.96) * sd / math.sqrt(n)
    return [mean - half, mean + half]


# One Newton-Schulz step towards the nearest orthogonal matrix, Muon's quintic: {x} scaled to spectral norm <= 1
# (by its Frobenius norm), then a X + (b A + c A^2) X with A = X X^T; 1-D tensors pass unchanged.
_UNIT = "({x} / (torch.linalg.matrix_norm({x}) + 1e-7))"
_GRAM = f"({_UNIT} @ {_UNIT}.T)"
NEWTON_SCHULZ = (
    f"(3.4445 * {_UNIT} + (-4.775 * {_GRAM} + 2.0315 * {_GRAM} @ {_GRAM}) @ {_UNIT}) if {{x}}.ndim == 2 else {{x}}"
)


class OptimizerDiscovery(Problem):
    name = "optimizer_discovery"
    version = HARNESS_VERSION
    description = DESCRIPTION
    descriptors = (
        Descriptor("state_tensors", 0, 4, 5, "state tensors per parameter (memory)"),
        Descriptor("grad_alignment", -0.2, 1.0, 6, "cosine of the direction with the gradient"),
        Descriptor("sign_likeness", 0.5, 1.0, 5, "mean |d| / RMS d: 1 for sign-like steps"),
    )
    fingerprint = Stage("fingerprint", timeout_s=30)
    # The filter only stops rules that make no progress: 0.25 is the floor of a task's score.
    stages = (Stage("filter", threshold=0.26, timeout_s=120), Stage("select", timeout_s=600))
    validate = Stage("validate", timeout_s=1200)
    confirm = Stage("confirm", timeout_s=1200)
    heldout = Stage("heldout", timeout_s=1800)
    allowed_imports = frozenset({"torch", "math"})
    code_rules = CodeRules(
        banned_attributes=BANNED_ATTRIBUTES,
        banned_names=BANNED_NAMES,
        private_attributes=False,
        attribute_assignment=False,
        classes=False,
    )
    # What the block's functions see (the contract above): children are type-checked against it before
    # they run, so a number or the state dict where a tensor goes costs no evaluation.
    block_types = BlockTypes(
        functions=(
            ("init_state", Signature(params=(("param", Kind.TENSOR),), returns=(Kind.STATE,))),
            (
                "update",
                Signature(
                    params=(
                        ("param", Kind.TENSOR),
                        ("grad", Kind.TENSOR),
                        ("state", Kind.STATE),
                        ("step", Kind.NUMBER),
                        ("total_steps", Kind.NUMBER),
                    ),
                    returns=(Kind.TENSOR, Kind.STATE),
                ),
            ),
        ),
        state_keys_from="init_state",
        min_ndim=1,  # biases and other vectors
    )
    primitives = Primitives(
        binary_ops=("+", "-", "*", "/"),
        calls=("torch.sqrt", "torch.sign", "torch.abs", "torch.square", "torch.tanh", "torch.rsqrt"),
        constants=(0.9, 0.99, 0.999, 0.1, 0.01, 0.001, 1e-8, 0.5, 1.0, 2.0),
        # The idioms update rules are built from (EMA updates, division with an epsilon, clipping,
        # norms); where to apply them, and to what, is left to the search.
        templates=(
            "{d} * {x} + (1 - {d}) * {n}",  # EMA update of {x} toward {n}
            "{x} / (torch.abs({n}) + {c})",  # division with an epsilon
            "torch.clamp({x}, -{c}, {c})",  # clipping
            "{x} / (torch.sqrt(torch.mean({x} * {x})) + 1e-8)",  # normalise by the RMS norm
            "{x} / (1 - {d} ** step)",  # bias correction of a running average started at zero
            "torch.sign({x})",  # sign descent (Lion, signSGD)
            # trust ratio (LARS / LAMB): the step's size set by the parameter's
            "{x} * torch.sqrt(torch.mean(param * param)) / (torch.sqrt(torch.mean({x} * {x})) + 1e-8)",
            # a Newton-Schulz step towards the nearest orthogonal matrix (Muon's quintic), for matrices only
            NEWTON_SCHULZ,
        ),
        decays=(0.9, 0.95, 0.99, 0.999),
        # A new running average in the state, in one edit (SGD -> momentum, RMSprop; momentum -> Adam)
        state=StateEntries(
            init_function="init_state",
            update_function="update",
            state_param="state",
            init="torch.zeros_like(param)",
            updates=(
                "{d} * {s} + (1 - {d}) * grad",  # first moment
                "{d} * {s} + (1 - {d}) * grad * grad",  # second moment
                "torch.maximum({d} * {s}, torch.abs(grad))",  # infinity norm (Adamax)
            ),
            uses=(
                "{v}",  # the average instead (momentum)
                "{x} / (torch.sqrt({v}) + 1e-8)",  # divided by a second moment's root (RMSprop, Adam)
                "{x} / ({v} + 1e-8)",  # divided by an infinity norm (Adamax)
                "{x} + {d} * {v}",  # a Nesterov-style look-ahead: the step plus the momentum
            ),
        ),
    )

    def __init__(self, folder: Path, options: dict[str, Any]) -> None:
        super().__init__(folder, options)
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise ProblemError(f"problem.options: unknown option(s) {sorted(unknown)}; known: {', '.join(OPTIONS)}")
        self.seeds = dict(DEFAULT_SEEDS)
        if "seeds" in options:
            self.seeds["filter"] = self.seeds["select"] = _seeds(options["seeds"], "select")
        if "validate_seeds" in options:
            self.seeds["validate"] = _seeds(options["validate_seeds"], "validate")
        if "heldout_seeds" in options:
            self.seeds["heldout"] = _seeds(options["heldout_seeds"], "heldout")
        self.requested_device = str(options.get("device", "cpu"))
        if self.requested_device not in ("cpu", "auto") and not self.requested_device.startswith("cuda"):
            raise ProblemError(f"problem.options.device: {self.requested_device!r} is not cpu, cuda or auto")
        self.suite = str(options.get("suite", "cpu"))
        if self.suite not in SUITES:
            raise ProblemError(f"problem.options.suite: {self.suite!r} is not one of {', '.join(SUITES)}")
        self.compute_penalty = float(options.get("compute_penalty", 0.0))
        if not 0 <= self.compute_penalty <= 4:
            raise ProblemError("problem.options.compute_penalty: must be between 0 (ignore compute) and 4")
        self._losses: dict[tuple[str, str], list[float]] = {}  # trusted validation losses, by content hash

    def seed_programs(self) -> dict[str, str]:
        seeds_dir = self.folder / "seeds"
        order = ["sgd"] + sorted(p.stem for p in seeds_dir.glob("*.py") if p.stem != "sgd")
        return {name: (seeds_dir / f"{name}.py").read_text() for name in order}

    def reference_program(self) -> str | None:
        return (self.folder / "seeds" / "adamw.py").read_text()

    def preflight(self) -> None:
        """Before a run: every curve the suite needs is measured for the device kind it will train on."""
        kind = torch.device(resolve_device(self.requested_device) if self.requested_device != "cpu" else "cpu").type
        absent = missing(kind, self.suite)
        if absent:
            raise ProblemError(
                f"optimizer_discovery: no tuned-AdamW curve on {kind} for {', '.join(absent)}; measure "
                f"them with `python -m problems.optimizer_discovery.baselines {kind} {self.suite} 2`"
            )

    @property
    def device(self) -> str:
        """Where this process trains and scores: resolved where it is used (a controller without a GPU can
        drive candidates that run on one)."""
        if not hasattr(self, "_device"):
            self._device = resolve_device(self.requested_device)
        return self._device

    def tasks_for(self, stage: str) -> tuple[str, ...]:
        if stage not in self.seeds:
            raise ContractError(f"unknown stage {stage!r}")
        return tasks_of(self.suite, stage)

    def baseline(self, task: str, stage: str, seeds: tuple[int, ...]) -> dict[str, Any]:
        """The tuned AdamW curve of a task, for these seeds of this stage (paired at N)."""
        measured = baseline_seeds(self.suite, task)
        return curve_for_seeds(adamw_curve(task, self.device, measured, self.suite), seeds)

    # -- inside the sandbox ---------------------------------------------------------------------
    def prepare(self) -> None:
        """Warm up a warm server before it forks candidates: build every task's training side. On a GPU only
        the imports: a server that touched CUDA could not fork children that use it."""
        torch.set_num_threads(1)
        if self.requested_device != "cpu":
            import sklearn.datasets  # noqa: F401  (the imports and corpora, not the tensors on the device)

            return
        for role in ("filter", "select", "validate", "heldout"):
            for name in self.tasks_for(role):
                task = get_task(name, "cpu")
                task.make_batch(task.batches(0))

    def run_stage(self, code: str, stage: str, workdir: Path, request: dict[str, Any] | None = None) -> dict[str, Any]:
        """Train (no validation data here): the parameters of every LR asked for, every seed of the stage."""
        torch.set_num_threads(1)
        init_state, update = load_rule(code)  # fails early on a broken program; every run gets a fresh copy
        try:
            if stage == "fingerprint":
                return {"probe": scale_free(probe(init_state, update))}
            out = self.train_stage(stage, lambda name: lambda: load_rule(code), request)
            return {"state_tensors": len(_checked_state(init_state)), "probe": probe(init_state, update), **out}
        except RuleContractError as exc:
            raise ContractError(str(exc)) from None

    def train_stage(self, stage: str, rule_for: Any, request: dict[str, Any] | None) -> dict[str, Any]:
        """One round of a stage: ``rule_for(task)`` makes fresh instances of the rule trained on that task."""
        tasks: dict[str, Any] = {}
        for name in self.tasks_for(stage):
            lrs = list(LR_GRID) if request is None else [float(x) for x in request["lrs"][name]]
            task = get_task(name, self.device)
            params_by_seed, vectorised = run_rule(task, rule_for(name), self.seeds[stage], task.steps, lrs)
            tasks[name] = {
                "vectorised": vectorised,
                "params": {str(s): {n: encode(p) for n, p in params.items()} for s, params in params_by_seed.items()},
            }
        return {"tasks": tasks}

    def score_in_process(self, stage: str, rule_for: Any) -> StageScore:
        """A stage for rules of the harness's own (the baseline, rescaled AdamW in the benchmarks and tests):
        trained in this process, through the same rounds and the same trusted scoring as a candidate's."""
        first = self.train_stage(stage, rule_for, None)
        second = self.train_stage(stage, rule_for, self.follow_up(stage, [first]))
        return self.score_rounds("", stage, [first, second])

    # -- trusted, in the evaluator's process ---------------------------------------------------------
    def _measured(self, stage: str, name: str, entry: Any, lrs: list[float]) -> list[list[float]]:
        """Validation loss per seed and LR, measured here from the returned parameters (never taken from the
        candidate). Cached by the content of the parameters: the refinement round and the score reuse them."""
        task = get_task(name, self.device)
        reference = task.init_params(0)
        params = entry.get("params") if isinstance(entry, dict) else None
        seeds = self.seeds[stage]
        if not isinstance(params, dict) or set(params) != {str(s) for s in seeds}:
            raise ContractError(f"task {name}: expected parameters for seeds {list(seeds)}")
        out = []
        for seed in seeds:
            per_seed = params[str(seed)]
            if not isinstance(per_seed, dict) or set(per_seed) != set(reference):
                raise ContractError(f"task {name}: malformed parameters for seed {seed}")
            digest = hashlib.sha256(
                b"".join(
                    per_seed[n]["data"]
                    for n in reference
                    if isinstance(per_seed[n], dict) and isinstance(per_seed[n].get("data"), bytes)
                )
            ).hexdigest()
            key = (name, f"{seed}:{lrs}:{digest}")
            if key not in self._losses:
                stacked = {
                    n: decode(per_seed[n], (len(lrs), *ref.shape)).to(task.device) for n, ref in reference.items()
                }
                self._losses[key] = val_losses(task, stacked)
            out.append(self._losses[key])
        return out

    def follow_up(self, stage: str, rounds: list[dict[str, Any]]) -> dict[str, Any] | None:
        """After the grid: train again at eighth-decade steps around each task's best grid LR."""
        if stage == "fingerprint" or len(rounds) != 1:
            return None
        lrs: dict[str, list[float]] = {}
        for name in self.tasks_for(stage):
            means = lr_means(self._measured(stage, name, _task_entry(rounds[0], name), list(LR_GRID)))
            lrs[name] = refined(LR_GRID[min(range(len(means)), key=lambda i: means[i])])
        return {"lrs": lrs}

    def score_rounds(self, code: str, stage: str, rounds: list[dict[str, Any]]) -> StageScore:
        if len(rounds) != 2:
            raise ContractError("expected the grid round and the refinement round")
        seeds = self.seeds[stage]
        refinement = self.follow_up(stage, rounds[:1])
        assert refinement is not None
        metrics: dict[str, Any] = {}
        per_seed_scores: list[list[float]] = [[] for _ in seeds]
        for name in self.tasks_for(stage):
            lrs = [*LR_GRID, *refinement["lrs"][name]]
            grid = self._measured(stage, name, _task_entry(rounds[0], name), list(LR_GRID))
            fine = self._measured(stage, name, _task_entry(rounds[1], name), refinement["lrs"][name])
            losses = [g + f for g, f in zip(grid, fine, strict=True)]
            means = lr_means(losses)
            best = min(range(len(means)), key=lambda i: means[i])
            start = initial_loss(get_task(name, self.device), seeds)
            if not math.isfinite(means[best]) or means[best] >= start:
                raise _diverged(name, means[best], start)
            curve = self.baseline(name, stage, seeds)
            at_n = curve["budgets"].index(curve["n"])
            for i, s in enumerate(seeds):  # each seed against AdamW tuned on that seed alone: the spread
                per_seed_scores[i].append(budget_ratio(losses[i][best], self.baseline(name, stage, (s,))))
            metrics[name] = {
                "score": budget_ratio(means[best], curve),
                "val_loss": means[best],
                "best_lr": lrs[best],
                "initial_loss": start,
                "adamw_val_loss_at_n": curve["best_loss"][at_n],
                "adamw_config_at_n": curve["best_config"][at_n],
                "lr_robustness": sum(1 for m in means if math.isfinite(m) and m <= means[best] * 1.1),
                "vectorised": bool(_task_entry(rounds[0], name).get("vectorised", False)),
            }
        fitness = _geomean([metrics[n]["score"] for n in self.tasks_for(stage)])
        by_seed = [_geomean(s) for s in per_seed_scores]
        state_tensors = rounds[0].get("state_tensors", 0)
        descriptors = {
            "state_tensors": float(state_tensors) if isinstance(state_tensors, int) else 0.0,
            **_descriptors(rounds[0].get("probe")),
        }
        return StageScore(
            fitness,
            {
                "tasks": metrics,
                "stage_fitness": fitness,
                "seeds": list(seeds),
                "per_seed_fitness": by_seed,
                "interval": interval(by_seed),
            },
            descriptors,
        )

    def score(self, code: str, stage: str, artifacts: dict[str, Any]) -> StageScore:
        raise ContractError("optimizer_discovery scores a stage from its two rounds (score_rounds)")

    def task_scores(self, stage_metrics: dict[str, Any]) -> dict[str, float]:
        tasks = stage_metrics.get("tasks")
        return (
            {k: float(v["score"]) for k, v in tasks.items() if isinstance(v, dict) and "score" in v}
            if isinstance(tasks, dict)
            else {}
        )

    def apply_cost(self, score: StageScore, compute_ratio: float | None) -> StageScore:
        """``compute_penalty`` p: fitness / max(1, compute ratio) ** p (a rule that spends more CPU per step than
        AdamW pays for it; 0, the default, ignores compute)."""
        if not self.compute_penalty or compute_ratio is None or not math.isfinite(compute_ratio):
            return score
        factor = max(1.0, compute_ratio) ** -self.compute_penalty
        return StageScore(score.fitness * factor, {**score.metrics, "compute_factor": factor}, score.descriptors)

    def fingerprint_of(self, artifacts: dict[str, Any]) -> str:
        """Scale-free directions rounded to 5 significant digits: a rule times a constant is the same rule."""
        return super().fingerprint_of(_rounded(artifacts, 5))


class _Diverged(ContractError):
    kind = "diverged"


def _diverged(name: str, loss: float, start: float) -> ContractError:
    what = (
        "no finite loss" if not math.isfinite(loss) else f"best loss {loss:.4g} is not below the untrained {start:.4g}"
    )
    return _Diverged(f"diverged on {name}: at every learning rate tried, {what}")


def _checked_state(init_state: Any) -> dict[str, torch.Tensor]:
    state = init_state(torch.zeros(4, 3))
    if type(state) is not dict or not all(type(v) is torch.Tensor for v in state.values()):
        raise ContractError("init_state must return a dict of tensors")
    return state


def _task_entry(artifacts: dict[str, Any], name: str) -> dict[str, Any]:
    tasks = artifacts.get("tasks")
    entry = tasks.get(name) if isinstance(tasks, dict) else None
    if not isinstance(entry, dict):
        raise ContractError(f"no results for task {name}")
    return entry


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _descriptors(probed: Any) -> dict[str, float]:
    """From the candidate's own probe (descriptors place a program in the grid; they are not fitness)."""
    try:
        return behaviour(probed)
    except (TypeError, ValueError, KeyError, AttributeError, ZeroDivisionError):
        return {"grad_alignment": 0.0, "sign_likeness": 0.0}


def _rounded(value: Any, digits: int) -> Any:
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    return value


def make_problem(folder: Path, options: dict[str, Any]) -> Problem:
    return OptimizerDiscovery(folder, options)
