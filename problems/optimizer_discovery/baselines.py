"""The tuned-AdamW reference curve of each task, measured once per harness version and cached.

For budgets N/4, N/2, N and 2N, AdamW (the harness's own trusted implementation, with the task's
decoupled weight decay and schedule) is run over the LR grid for three seeds; the curve keeps the
best mean validation loss per budget. The cache, ``adamw_curves.json`` beside this file, is keyed
by harness version and task definition, and is recomputed when a key is missing.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from problems.optimizer_discovery.tasks import get_task
from problems.optimizer_discovery.train import LR_GRID, best_loss, run_rule, val_losses

HARNESS_VERSION = "2"  # bump when tasks, schedule or scoring change: invalidates the cache
BASELINE_SEEDS = (0, 1, 2)
CACHE = Path(__file__).resolve().parent / "adamw_curves.json"


def adamw_init(param: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"m": torch.zeros_like(param), "v": torch.zeros_like(param)}


def adamw_update(param: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor], lr: torch.Tensor,
                 step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    m = 0.9 * state["m"] + 0.1 * grad
    v = 0.999 * state["v"] + 0.001 * grad * grad
    m_hat = m / (1 - 0.9 ** step)
    v_hat = v / (1 - 0.999 ** step)
    return param - lr * m_hat / (torch.sqrt(v_hat) + 1e-8), {"m": m, "v": v}


def cache_key(task_name: str) -> str:
    task = get_task(task_name)
    return f"v{HARNESS_VERSION}/{task_name}/n{task.steps}/wd{task.weight_decay}/lrs{len(LR_GRID)}"


def measure_curve(task_name: str) -> dict[str, Any]:
    """Validation loss per budget, seed and LR (``losses[budget][seed][lr]``)."""
    task = get_task(task_name)
    n = task.steps
    budgets = [max(1, n // 4), max(1, n // 2), n, 2 * n]
    losses = []
    for budget in budgets:
        params, _ = run_rule(task, adamw_init, adamw_update, BASELINE_SEEDS, budget)
        losses.append([val_losses(task, params[s]) for s in BASELINE_SEEDS])
    return {"n": n, "budgets": budgets, "seeds": list(BASELINE_SEEDS), "losses": losses}


def curve_for_seeds(curve: dict[str, Any], seeds: tuple[int, ...]) -> dict[str, Any]:
    """The tuned AdamW curve (best LR per budget) averaged over the same seeds as the candidate.

    Comparing on the same seeds removes seed noise from the comparison and makes AdamW score
    exactly 1.0.
    """
    missing = [s for s in seeds if s not in curve["seeds"]]
    if missing:
        raise ValueError(f"no AdamW baseline for seeds {missing} (baseline seeds: {curve['seeds']})")
    rows = [curve["seeds"].index(s) for s in seeds]
    best, lrs = [], []
    for per_budget in curve["losses"]:
        loss, idx = best_loss([per_budget[r] for r in rows])
        best.append(loss)
        lrs.append(LR_GRID[idx])
    return {"n": curve["n"], "budgets": curve["budgets"], "best_loss": best, "best_lr": lrs}


def _load() -> dict[str, Any]:
    try:
        return json.loads(CACHE.read_text())
    except (OSError, ValueError):
        return {}


def adamw_curve(task_name: str) -> dict[str, Any]:
    key = cache_key(task_name)
    cached = _load()
    if key in cached:
        return cached[key]
    torch.set_num_threads(1)
    curve = measure_curve(task_name)
    prefix = f"v{HARNESS_VERSION}/"
    cached = {k: v for k, v in _load().items() if k.startswith(prefix)}  # older versions are stale
    cached[key] = curve
    try:  # atomic replace: concurrent evaluators may race to fill the cache
        fd, tmp = tempfile.mkstemp(dir=CACHE.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(cached, f, indent=1, sort_keys=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, CACHE)
    except OSError:
        pass  # read-only install: recomputed per process, still correct
    return curve
