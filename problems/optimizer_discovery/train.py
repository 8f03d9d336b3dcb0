"""The trusted training loop: runs an update rule over a learning-rate grid, vectorised with vmap.

The harness owns the schedule (linear warmup + cosine), decoupled weight decay, seeds and data
order. The candidate only supplies ``init_state(param) -> state`` and
``update(param, grad, state, lr, step) -> (new_param, new_state)``; it receives the base LR of
the sweep, and the harness scales the step the rule takes (``new_param - param``) by the schedule.
For the usual rules, whose step is linear in ``lr``, that is exactly "the rule sees the scheduled
LR"; a rule that ignores ``lr`` still gets warmup and decay, so it cannot drop the schedule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.func import grad, vmap

from problems.optimizer_discovery.tasks import Params, Task

LR_GRID = tuple(10 ** (-4 + 0.5 * i) for i in range(9))  # 1e-4 ... 1
WARMUP_FRACTION = 0.05

InitFn = Callable[[torch.Tensor], dict[str, torch.Tensor]]
UpdateFn = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]


def schedule(step: int, steps: int) -> float:
    """Multiplier of the base LR at ``step`` (1-based): linear warmup, then cosine to zero."""
    warm = max(1, int(WARMUP_FRACTION * steps))
    if step <= warm:
        return step / warm
    progress = (step - warm) / max(1, steps - warm)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def train(task: Task, init_state: InitFn, update: UpdateFn, seed: int, steps: int,
          lrs: tuple[float, ...] = LR_GRID, vectorise: bool = True) -> dict[str, torch.Tensor]:
    """Train one copy of the model per learning rate; return the final parameters stacked on dim 0."""
    torch.manual_seed(seed)
    base = task.init_params(seed)
    k = len(lrs)
    lr_vec = torch.tensor(lrs, dtype=torch.float32)
    gen = torch.Generator().manual_seed(10_000 + seed)
    if vectorise:
        params = {n: p.unsqueeze(0).repeat(k, *([1] * p.dim())) for n, p in base.items()}
        states = {n: vmap(init_state)(p) for n, p in params.items()}
        grad_fn = vmap(grad(task.loss), in_dims=(0, None))
        for step in range(1, steps + 1):
            batch = task.make_batch(gen)
            grads = grad_fn(params, batch)
            mult = schedule(step, steps)
            for n in params:
                p = params[n]
                new_p, states[n] = vmap(update, in_dims=(0, 0, 0, 0, None))(p, grads[n], states[n], lr_vec, step)
                shape = (-1, *([1] * (p.dim() - 1)))
                params[n] = ((p + mult * (new_p - p)) * (1.0 - mult * lr_vec * task.weight_decay).reshape(shape)).detach()
        return params
    # Sequential fallback for rules vmap cannot batch (data-dependent Python control flow...).
    copies: list[Params] = [{n: p.clone() for n, p in base.items()} for _ in lrs]
    seq_states = [{n: init_state(p) for n, p in c.items()} for c in copies]
    g = grad(task.loss)
    for step in range(1, steps + 1):
        batch = task.make_batch(gen)
        mult = schedule(step, steps)
        for i in range(len(lrs)):
            grads = g(copies[i], batch)
            for n in copies[i]:
                p = copies[i][n]
                new_p, seq_states[i][n] = update(p, grads[n], seq_states[i][n], lr_vec[i], step)
                copies[i][n] = ((p + mult * (new_p - p)) * (1.0 - mult * lr_vec[i] * task.weight_decay)).detach()
    return {n: torch.stack([c[n] for c in copies]) for n in base}


def val_losses(task: Task, stacked: dict[str, torch.Tensor]) -> list[float]:
    """Trusted validation loss of each LR's parameters (non-finite -> inf)."""
    out = []
    with torch.no_grad():
        for i in range(next(iter(stacked.values())).shape[0]):
            params = {n: p[i] for n, p in stacked.items()}
            if not all(torch.isfinite(p).all() for p in params.values()):
                out.append(math.inf)
                continue
            v = float(task.val_loss(params))
            out.append(v if math.isfinite(v) else math.inf)
    return out


def run_rule(task: Task, init_state: InitFn, update: UpdateFn, seeds: tuple[int, ...], steps: int,
             lrs: tuple[float, ...] = LR_GRID) -> tuple[dict[int, dict[str, torch.Tensor]], bool]:
    """Train for every seed; vmapped when the rule allows it. Returns (params by seed, vectorised?)."""
    out: dict[int, dict[str, torch.Tensor]] = {}
    vectorise = True
    for seed in seeds:
        if vectorise:
            try:
                out[seed] = train(task, init_state, update, seed, steps, lrs, vectorise=True)
                continue
            except (RuntimeError, ValueError, NotImplementedError) as exc:
                if not _is_vmap_limitation(exc):
                    raise
                vectorise = False
        out[seed] = train(task, init_state, update, seed, steps, lrs, vectorise=False)
    return out, vectorise


def _is_vmap_limitation(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(s in text for s in ("vmap", "batched tensor", "data-dependent", ".item()", "batching rule",
                                   "functorch"))


# -- scoring against the AdamW curve ------------------------------------------------------------
def best_loss(losses_by_seed: list[list[float]]) -> tuple[float, int]:
    """Mean over seeds per LR, then the best LR: (loss, LR index)."""
    k = len(losses_by_seed[0])
    means = [sum(s[i] for s in losses_by_seed) / len(losses_by_seed) for i in range(k)]
    idx = min(range(k), key=lambda i: means[i])
    return means[idx], idx


def budget_ratio(loss: float, curve: dict[str, Any]) -> float:
    """AdamW budget needed to reach ``loss`` / N, on the running-min envelope, in [1/4, 4]."""
    if not math.isfinite(loss):
        return 0.25
    budgets = [float(b) for b in curve["budgets"]]
    env, running = [], math.inf
    for v in curve["best_loss"]:
        running = min(running, v)
        env.append(running)
    n = float(curve["n"])
    logs = [math.log(b / n) for b in budgets]
    if loss >= env[0]:
        i = 0
    elif loss <= env[-1]:
        i = len(env) - 2
    else:
        i = next(j for j in range(len(env) - 1) if env[j] >= loss >= env[j + 1])
    lo, hi = env[i], env[i + 1]
    if lo - hi <= 1e-12:  # flat envelope: reaching it costs the later budget
        x = logs[i + 1] if loss < lo else logs[i]
    else:
        x = logs[i] + (lo - loss) / (lo - hi) * (logs[i + 1] - logs[i])
    return min(4.0, max(0.25, math.exp(x)))
