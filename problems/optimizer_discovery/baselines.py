"""The tuned-AdamW reference curve of each task, measured once per harness and cached.

AdamW is tuned over the learning rate and beta2 (beta1 0.9, eps 1e-8, the task's decoupled weight
decay and schedule), separately at each budget N/4, N/2, N, 2N and 4N (so that no score is
extrapolated): first on the candidates' grid (9 half-decade LRs x beta2 in {0.95, 0.99, 0.999}),
then, for each beta2, at eighth-decade steps around its best grid LR - the same refinement every
candidate gets. Every configuration's validation loss is kept per seed, so a candidate is compared on
exactly its own seeds (paired) and the baseline picks its best configuration for those seeds.

The cache, ``adamw_curves.json`` beside this file, is keyed by device kind, the task's definition
and a hash of the harness's source (tasks, training loop, this module) and the torch version: any
change to what a curve depends on measures it again. A missing curve is an error that names the
command measuring it: ``python -m problems.optimizer_discovery.baselines [device] [suite] [jobs]``.
"""

from __future__ import annotations

import fcntl
import hashlib
import inspect
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import torch

from evolve.problem import ProblemError
from problems.optimizer_discovery import tasks
from problems.optimizer_discovery import train as train_module
from problems.optimizer_discovery.suites import ROLE_TASKS, SEEDS, SUITES, TASKS, get_task, task_steps
from problems.optimizer_discovery.train import LR_GRID, UpdateFn, best_loss, lr_means, refined, train, val_losses

HARNESS_VERSION = "4"
BETA2S = (0.95, 0.99, 0.999)
BUDGET_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
CACHE = Path(__file__).resolve().parent / "adamw_curves.json"
MEASURE = "python -m problems.optimizer_discovery.baselines {device} {suite} 2"


def adamw_init(param: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"m": torch.zeros_like(param), "v": torch.zeros_like(param)}


def adamw_update(beta2: float) -> UpdateFn:
    """AdamW's direction with this beta2; the same arithmetic as the adamw seed program, so the seed
    reproduces the baseline's grid configurations exactly."""

    def update(
        param: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor], step: int, total_steps: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        m = 0.9 * state["m"] + (1 - 0.9) * grad
        v = beta2 * state["v"] + (1 - beta2) * grad * grad
        m_hat = m / (1 - 0.9**step)
        v_hat = v / (1 - beta2**step)
        return m_hat / (torch.sqrt(v_hat) + 1e-8), {"m": m, "v": v}

    return update


@cache
def _harness_hash() -> str:
    """What every curve depends on besides its task (whose signature covers the tasks and the training loop):
    how AdamW is run and tuned here, and the torch version."""
    parts = [inspect.getsource(f) for f in (adamw_init, adamw_update, _losses, measure_curve)]
    text = "".join(parts) + repr((BETA2S, BUDGET_FACTORS, LR_GRID)) + torch.__version__
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def task_signature(name: str) -> str:
    """A short hash of a task's definition: its keyword arguments and defaults, the source of the tasks
    module (models, data preparation, generators) and of the training loop: the cached curves are keyed by it."""
    spec = TASKS[name]
    defaults = {
        k: p.default
        for k, p in inspect.signature(spec.func).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    args: dict[str, Any] = {k: getattr(v, "__name__", v) for k, v in sorted({**defaults, **spec.keywords}.items())}
    text = (
        f"{spec.func.__name__}:{sorted(args.items())}:{_source_hash(inspect.getsource(tasks))}:"
        f"{_source_hash(inspect.getsource(train_module))}"
    )
    return hashlib.sha256(text.encode()).hexdigest()[:10]


@cache
def _source_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def cache_key(task_name: str, device: str, seeds: tuple[int, ...]) -> str:
    """Keyed by device kind: a GPU's numerics differ from a CPU's, so each kind has its own curves."""
    kind = torch.device(device).type
    return (
        f"v{HARNESS_VERSION}/{kind}/{task_name}/{task_signature(task_name)}-{_harness_hash()}/"
        f"n{task_steps(task_name)}/seeds{'-'.join(map(str, seeds))}"
    )


def _losses(
    task_name: str, device: str, seeds: tuple[int, ...], budget: int, beta2: float, lrs: list[float]
) -> list[list[float]]:
    task = get_task(task_name, device)
    update = adamw_update(beta2)
    return [val_losses(task, train(task, adamw_init, update, s, budget, tuple(lrs))) for s in seeds]


def measure_curve(task_name: str, device: str, seeds: tuple[int, ...]) -> dict[str, Any]:
    """Per budget: the configurations tried ([lr, beta2]) and each one's validation loss per seed."""
    n = get_task(task_name, device).steps
    out: dict[str, Any] = {
        "n": n,
        "budgets": [max(1, int(n * f)) for f in BUDGET_FACTORS],
        "seeds": list(seeds),
        "per_budget": [],
    }
    for budget in out["budgets"]:
        configs: list[list[float]] = []
        per_seed: list[list[float]] = [[] for _ in seeds]
        for beta2 in BETA2S:
            coarse = _losses(task_name, device, seeds, budget, beta2, list(LR_GRID))
            fine_lrs = refined(LR_GRID[best_loss(coarse)[1]])
            fine = _losses(task_name, device, seeds, budget, beta2, fine_lrs)
            configs += [[lr, beta2] for lr in (*LR_GRID, *fine_lrs)]
            for i in range(len(seeds)):
                per_seed[i] += coarse[i] + fine[i]
        out["per_budget"].append({"budget": budget, "configs": configs, "losses": per_seed})
    return out


def _best_per_budget(curve: dict[str, Any], rows: list[int]) -> tuple[list[float], list[list[float]]]:
    """At each budget, the tuned configuration's mean loss over these seed rows, and that configuration."""
    best, configs = [], []
    for entry in curve["per_budget"]:
        loss, idx = best_loss([entry["losses"][r] for r in rows])
        best.append(loss)
        configs.append(entry["configs"][idx])
    return best, configs


def curve_for_seeds(curve: dict[str, Any], seeds: tuple[int, ...]) -> dict[str, Any]:
    """The tuned AdamW curve a candidate scored on ``seeds`` is compared with.

    At the reference budget N it is AdamW tuned on exactly those seeds (paired: the seed noise shared by
    both sides cancels, and tuned AdamW scores exactly 1.0). At the other budgets its shape comes from
    all the baseline's seeds, shifted by the same seeds' offset at N: early in training a 2-seed mean
    is very noisy, and a paired curve there made low scores hinge on which seeds were drawn."""
    missing = [s for s in seeds if s not in curve["seeds"]]
    if missing:
        raise ValueError(f"no AdamW baseline for seeds {missing} (baseline seeds: {curve['seeds']})")
    paired, paired_configs = _best_per_budget(curve, [curve["seeds"].index(s) for s in seeds])
    shape, configs = _best_per_budget(curve, list(range(len(curve["seeds"]))))
    at_n = curve["budgets"].index(curve["n"])
    offset = paired[at_n] - shape[at_n]
    best = [paired[at_n] if i == at_n else loss + offset for i, loss in enumerate(shape)]
    configs[at_n] = paired_configs[at_n]
    return {"n": curve["n"], "budgets": curve["budgets"], "best_loss": best, "best_config": configs}


def seed_losses_at(curve: dict[str, Any], budget_index: int) -> list[float]:
    """Each baseline seed's loss at one budget, under the configuration best on the mean over all seeds."""
    entry = curve["per_budget"][budget_index]
    idx = min(range(len(entry["configs"])), key=lambda i: lr_means(entry["losses"])[i])
    return [s[idx] for s in entry["losses"]]


def _load() -> dict[str, Any]:
    try:
        return dict(json.loads(CACHE.read_text()))
    except (OSError, ValueError):
        return {}


_MEMO: dict[str, dict[str, Any]] = {}


def adamw_curve(task_name: str, device: str, seeds: tuple[int, ...], suite: str = "cpu") -> dict[str, Any]:
    """The cached curve; a missing one is an error naming the command that measures it (measuring takes
    minutes per task and must not start unannounced inside an evaluation)."""
    key = cache_key(task_name, device, seeds)
    if key not in _MEMO:
        cached = _load()
        if key not in cached:
            kind = torch.device(device).type
            command = MEASURE.format(device=kind, suite=suite)
            raise ProblemError(
                f"optimizer_discovery: no tuned-AdamW curve for task {task_name} on {kind} (harness "
                f"{HARNESS_VERSION}); measure the missing ones with `{command}`"
            )
        _MEMO[key] = cached[key]
    return _MEMO[key]


def missing(device: str, suite: str) -> list[str]:
    """The tasks of a suite whose curve is not cached for this device kind."""
    cached = _load()
    return [task for role, task, seeds in jobs(suite) if cache_key(task, device, seeds) not in cached]


def baseline_seeds(suite: str, task: str) -> tuple[int, ...]:
    """The seeds a task's curve is measured on: those of every role that trains on it."""
    return next(seeds for _, name, seeds in jobs(suite) if name == task)


def jobs(suite: str) -> list[tuple[str, str, tuple[int, ...]]]:
    """(role, task, baseline seeds) of every curve a suite needs (a task of several roles: all its seeds)."""
    out: dict[str, tuple[str, set[int]]] = {}
    for role in (*SUITES[suite], *ROLE_TASKS):
        for task in SUITES[suite][ROLE_TASKS.get(role, role)]:
            out.setdefault(task, (role, set()))[1].update(SEEDS[role])
    return [(role, task, tuple(sorted(seeds))) for task, (role, seeds) in out.items()]


@contextmanager
def _locked() -> Iterator[None]:
    """Serialise read-merge-write of the cache between processes measuring different tasks."""
    with open(CACHE.parent / ".adamw_curves.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write(cached: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=CACHE.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(cached, f, indent=0, sort_keys=True)
    os.chmod(tmp, 0o644)
    os.replace(tmp, CACHE)


def _measure(job: tuple[str, str, tuple[int, ...]]) -> str:
    task, device, seeds = job
    torch.set_num_threads(1)
    curve = measure_curve(task, device, seeds)
    with _locked():
        cached = _load()
        cached[cache_key(task, device, seeds)] = curve
        _write(cached)
    return task


def main(argv: list[str]) -> None:
    """Measure every missing curve of a suite (and drop the stale ones of this device kind):
    python -m problems.optimizer_discovery.baselines [device] [suite] [jobs]."""
    device, suite, workers = (argv + ["cpu", "cpu", "2"][len(argv) :])[:3]
    wanted = [(task, device, seeds) for _, task, seeds in jobs(suite)]
    with _locked():
        current = {cache_key(*j) for j in wanted}
        kind = torch.device(device).type
        ours = f"v{HARNESS_VERSION}/{kind}/"  # other harness versions are stale; other device kinds are kept
        kept = {
            k: v
            for k, v in _load().items()
            if k.startswith(f"v{HARNESS_VERSION}/") and (k in current or not k.startswith(ours))
        }
        _write(kept)
    todo = sorted((j for j in wanted if cache_key(*j) not in kept), key=lambda j: -task_steps(j[0]))
    print(f"{len(todo)} curve(s) to measure on {device}: {', '.join(t for t, _, _ in todo) or 'none'}", flush=True)
    with ProcessPoolExecutor(int(workers)) as pool:
        for name in pool.map(_measure, todo):
            print(f"measured {name}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
