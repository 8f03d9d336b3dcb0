"""The trusted training loop (harness v3): runs an update rule over a learning-rate grid, vectorised
with vmap, and the scoring against the tuned-AdamW curve.

The contract: the candidate supplies ``init_state(param) -> state`` and
``update(param, grad, state, step) -> (direction, new_state)``. It never sees the learning rate:
the harness owns the LR sweep, the schedule (linear warmup + cosine) and decoupled weight decay,
and applies ``p <- p - lr * s(t) * direction - lr * s(t) * wd * p``. Every rule of the zoo is
linear in the LR, so nothing real is lost, and a rule cannot reshape the LR grid or drop the
schedule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.func import grad, vmap

from problems.optimizer_discovery.tasks import Params, Task

LR_GRID = tuple(10 ** (-4 + 0.5 * i) for i in range(9))  # 1e-4 ... 1, half-decade steps
WARMUP_FRACTION = 0.05

InitFn = Callable[[torch.Tensor], dict[str, torch.Tensor]]
UpdateFn = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]


class RuleContractError(ValueError):
    """The rule returned something the harness cannot apply (wrong shape, not a tensor...)."""


def schedule(step: int, steps: int) -> float:
    """Multiplier of the base LR at ``step`` (1-based): linear warmup, then cosine to zero."""
    warm = max(1, int(WARMUP_FRACTION * steps))
    if step <= warm:
        return step / warm
    progress = (step - warm) / max(1, steps - warm)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _check(direction: Any, param: torch.Tensor) -> torch.Tensor:
    if not isinstance(direction, torch.Tensor) or tuple(direction.shape) != tuple(param.shape):
        got = tuple(direction.shape) if isinstance(direction, torch.Tensor) else type(direction).__name__
        raise RuleContractError(f"update must return a direction shaped like the parameter {tuple(param.shape)}, "
                                f"got {got}")
    return direction


Rule = tuple[InitFn, UpdateFn]
RuleFactory = Callable[[], Rule]


def train(task: Task, init_state: InitFn, update: UpdateFn, seed: int, steps: int,
          lrs: tuple[float, ...] | torch.Tensor = LR_GRID, vectorise: bool = True,
          states: dict[str, dict[str, torch.Tensor]] | None = None,
          per_lr: list[Rule] | None = None) -> dict[str, torch.Tensor]:
    """Train one copy of the model per learning rate; return the final parameters stacked on dim 0.

    ``states`` (vectorised only) replaces the rule's initial state, batched over the copies.
    ``per_lr`` (sequential only) gives each LR's copy its own instance of the rule, so that copies
    cannot share anything through the rule's module.
    """
    torch.manual_seed(seed)
    base = task.init_params(seed)
    lr_vec = torch.as_tensor(lrs, dtype=torch.float32)
    k = len(lr_vec)
    gen = torch.Generator(device=task.device).manual_seed(10_000 + seed)
    if vectorise:
        params = {n: p.unsqueeze(0).repeat(k, *([1] * p.dim())) for n, p in base.items()}
        state = states if states is not None else {n: vmap(init_state)(p) for n, p in params.items()}
        grad_fn = vmap(grad(task.loss), in_dims=(0, None))
        step_fn = vmap(update, in_dims=(0, 0, 0, None))
        for step in range(1, steps + 1):
            batch = task.make_batch(gen)
            grads = grad_fn(params, batch)
            mult = schedule(step, steps)
            for n, p in params.items():
                direction, state[n] = step_fn(p, grads[n], state[n], step)
                eta = (mult * lr_vec).reshape(-1, *([1] * (p.dim() - 1)))
                params[n] = (p - eta * _check(direction, p) - eta * task.weight_decay * p).detach()
        return params
    # Sequential fallback for rules vmap cannot batch (data-dependent Python control flow...).
    rules = per_lr or [(init_state, update)] * k
    copies: list[Params] = [{n: p.clone() for n, p in base.items()} for _ in range(k)]
    seq_states = [{n: rules[i][0](p) for n, p in c.items()} for i, c in enumerate(copies)]
    g = grad(task.loss)
    for step in range(1, steps + 1):
        batch = task.make_batch(gen)
        mult = schedule(step, steps)
        for i in range(k):
            grads = g(copies[i], batch)
            for n, p in copies[i].items():
                direction, seq_states[i][n] = rules[i][1](p, grads[n], seq_states[i][n], step)
                eta = mult * lr_vec[i]
                copies[i][n] = (p - eta * _check(direction, p) - eta * task.weight_decay * p).detach()
    return {n: torch.stack([c[n] for c in copies]) for n in base}


def val_losses(task: Task, stacked: dict[str, torch.Tensor]) -> list[float]:
    """Trusted validation loss of each copy's parameters (non-finite -> inf)."""
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


def run_rule(task: Task, make_rule: RuleFactory, seeds: tuple[int, ...], steps: int,
             lrs: tuple[float, ...] = LR_GRID) -> tuple[dict[int, dict[str, torch.Tensor]], bool]:
    """Train for every seed; vmapped when the rule allows it. Returns (params by seed, vectorised?).

    Each seed gets a fresh instance of the rule (and each LR one, when sequential): a rule cannot carry
    what it saw on one run into another through its module's globals.
    """
    out: dict[int, dict[str, torch.Tensor]] = {}
    vectorise = True
    for seed in seeds:
        if vectorise:
            try:
                out[seed] = train(task, *make_rule(), seed, steps, lrs, vectorise=True)
                continue
            except (RuntimeError, ValueError, NotImplementedError) as exc:
                if isinstance(exc, RuleContractError) or not _is_vmap_limitation(exc):
                    raise
                vectorise = False
        out[seed] = train(task, *make_rule(), seed, steps, lrs, vectorise=False,
                          per_lr=[make_rule() for _ in range(len(lrs))])
    return out, vectorise


def _is_vmap_limitation(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(s in text for s in ("vmap", "batched tensor", "data-dependent", ".item()", "batching rule",
                                   "functorch"))


# -- the behaviour probe (fingerprint stage) ----------------------------------------------------
PROBE_SHAPES = ((7,), (5, 3), (3, 6))
PROBE_STEPS = (1, 2, 3, 4, 5, 6, 1000, 1001)  # a late step too: rules that depend on the step count


def probe(init_state: InitFn, update: UpdateFn) -> dict[str, list[list[float]]]:
    """The rule's directions for a fixed sequence of gradients on fixed 1-D and 2-D parameters: the
    same numbers for every program that computes the same update."""
    gen = torch.Generator().manual_seed(1234)
    out: dict[str, list[list[float]]] = {}
    with torch.no_grad():
        for shape in PROBE_SHAPES:
            param = torch.randn(shape, generator=gen)
            state = init_state(param)
            directions = []
            for i, step in enumerate(PROBE_STEPS):
                g = torch.randn(shape, generator=gen) * (10.0 ** (i % 3 - 1))  # gradient scales 0.1, 1, 10
                direction, state = update(param, g, state, step)
                direction = _check(direction, param)
                directions.append([float(x) for x in direction.detach().reshape(-1)])
                param = param - 0.01 * direction
            out["x".join(map(str, shape))] = directions
    return out


# -- scoring against the AdamW curve ------------------------------------------------------------
def lr_means(losses_by_seed: list[list[float]]) -> list[float]:
    """Mean validation loss over seeds, per learning rate (per configuration)."""
    k = len(losses_by_seed[0])
    return [sum(s[i] for s in losses_by_seed) / len(losses_by_seed) for i in range(k)]


def best_loss(losses_by_seed: list[list[float]]) -> tuple[float, int]:
    """The best mean-over-seeds loss and its index (the LR, or configuration, that reached it)."""
    means = lr_means(losses_by_seed)
    idx = min(range(len(means)), key=lambda i: means[i])
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
