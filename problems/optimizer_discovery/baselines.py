"""The tuned-AdamW reference curve of each task, measured once per harness version and cached.

AdamW is tuned over the learning rate and beta2 (beta1 0.9, eps 1e-8, the task's decoupled weight
decay and schedule), separately at each budget N/4, N/2, N and 2N: first on the candidates' grid
(9 half-decade LRs x beta2 in {0.95, 0.99, 0.999}), then, for each beta2, at eighth-decade steps
around its best grid LR. The baseline thus gets a finer LR search than any candidate: a rule
that tunes its own scale constant cannot beat AdamW by grid luck. Every configuration's validation
loss is kept per seed, so a candidate is compared on exactly its own seeds (paired) and the
baseline picks its best configuration for those seeds at each budget.

The cache, ``adamw_curves.json`` beside this file, is keyed by harness version, device kind and
the task's definition, and a missing key is measured on first use (and stored when the file is
writable).
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from problems.optimizer_discovery.tasks import get_task, task_signature, task_steps
from problems.optimizer_discovery.train import LR_GRID, UpdateFn, best_loss, lr_means, train, val_losses

HARNESS_VERSION = "3"  # bump when tasks, schedule or scoring change: invalidates the cache
# The seeds the baseline is measured on, per role; a candidate is scored on a subset of them (paired).
BASELINE_SEEDS = {"filter": (0, 1, 2, 3, 4), "select": (0, 1, 2, 3, 4), "validate": (0, 1, 2), "heldout": (0, 1, 2)}
BETA2S = (0.95, 0.99, 0.999)
REFINE_DECADES = (-3 / 8, -2 / 8, -1 / 8, 1 / 8, 2 / 8, 3 / 8)
CACHE = Path(__file__).resolve().parent / "adamw_curves.json"


def adamw_init(param: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"m": torch.zeros_like(param), "v": torch.zeros_like(param)}


def adamw_update(beta2: float) -> UpdateFn:
    """AdamW's direction with this beta2; the same arithmetic as the adamw seed program, so the seed
    reproduces the baseline's grid configurations exactly."""

    def update(param: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor],
               step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        m = 0.9 * state["m"] + (1 - 0.9) * grad
        v = beta2 * state["v"] + (1 - beta2) * grad * grad
        m_hat = m / (1 - 0.9 ** step)
        v_hat = v / (1 - beta2 ** step)
        return m_hat / (torch.sqrt(v_hat) + 1e-8), {"m": m, "v": v}

    return update


def cache_key(task_name: str, device: str, seeds: tuple[int, ...]) -> str:
    """Keyed by device kind: a GPU's numerics differ from a CPU's, so each kind has its own curves."""
    kind = torch.device(device).type
    return (f"v{HARNESS_VERSION}/{kind}/{task_name}/{task_signature(task_name)}/n{task_steps(task_name)}/"
            f"seeds{''.join(map(str, seeds))}")


def _losses(task_name: str, device: str, seeds: tuple[int, ...], budget: int, beta2: float,
            lrs: list[float]) -> list[list[float]]:
    task = get_task(task_name, device)
    update = adamw_update(beta2)
    return [val_losses(task, train(task, adamw_init, update, s, budget, tuple(lrs))) for s in seeds]


def measure_curve(task_name: str, device: str, seeds: tuple[int, ...]) -> dict[str, Any]:
    """Per budget: the configurations tried ([lr, beta2]) and each one's validation loss per seed."""
    n = get_task(task_name, device).steps
    out: dict[str, Any] = {"n": n, "budgets": [max(1, n // 4), max(1, n // 2), n, 2 * n], "seeds": list(seeds),
                           "per_budget": []}
    for budget in out["budgets"]:
        configs: list[list[float]] = []
        per_seed: list[list[float]] = [[] for _ in seeds]
        for beta2 in BETA2S:
            coarse = _losses(task_name, device, seeds, budget, beta2, list(LR_GRID))
            centre = LR_GRID[best_loss(coarse)[1]]
            fine_lrs = [centre * 10 ** d for d in REFINE_DECADES]
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
    is very noisy (the character LM's loss at N/2 differs by 0.14 between seeds {0,1} and {2,3}, at N by
    0.03), and a paired curve there made scores below ~0.5 hinge on which seeds were drawn."""
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


def adamw_curve(task_name: str, device: str = "cpu", seeds: tuple[int, ...] = (0, 1, 2)) -> dict[str, Any]:
    key = cache_key(task_name, device, seeds)
    if key not in _MEMO:
        cached = _load()
        _MEMO[key] = cached[key] if key in cached else _store(key, measure_curve(task_name, device, seeds))
    return _MEMO[key]


@contextmanager
def _locked() -> Iterator[None]:
    """Serialise read-merge-write of the cache between processes measuring different tasks."""
    with open(CACHE.parent / ".adamw_curves.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _store(key: str, curve: dict[str, Any]) -> dict[str, Any]:
    prefix = f"v{HARNESS_VERSION}/"
    try:
        with _locked():
            cached = {k: v for k, v in _load().items() if k.startswith(prefix)}  # older versions are stale
            cached[key] = curve
            fd, tmp = tempfile.mkstemp(dir=CACHE.parent, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(cached, f, indent=0, sort_keys=True)
            os.chmod(tmp, 0o644)
            os.replace(tmp, CACHE)
    except OSError:
        pass  # read-only install: recomputed per process, still correct
    return curve


def _measure(job: tuple[str, str, tuple[int, ...]]) -> str:
    torch.set_num_threads(1)
    adamw_curve(*job)
    return job[0]


def main(argv: list[str]) -> None:
    """Measure every missing curve of a suite:
    python -m problems.optimizer_discovery.baselines [device] [suite] [jobs]."""
    from problems.optimizer_discovery.tasks import SUITES

    device, suite, workers = (argv + ["cpu", "cpu", "2"][len(argv):])[:3]
    jobs = [(task, device, BASELINE_SEEDS[role]) for role, tasks in SUITES[suite].items() for task in tasks]
    current = {cache_key(*j) for j in jobs}
    with _locked():  # curves of tasks no longer defined this way are dropped
        prefix = f"v{HARNESS_VERSION}/{torch.device(device).type}/"
        kept = {k: v for k, v in _load().items() if k in current or not k.startswith(prefix)}
        CACHE.write_text(json.dumps(kept, indent=0, sort_keys=True))
    jobs = [j for j in jobs if cache_key(*j) not in kept]
    with ProcessPoolExecutor(int(workers)) as pool:
        for name in pool.map(_measure, sorted(jobs, key=lambda j: j[0])):
            print(f"measured {name}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
