"""Training an update rule over a learning-rate grid (vectorised with vmap), the behaviour probe, and the
scoring against the tuned-AdamW curve (harness 4).

The contract: the candidate supplies ``init_state(param) -> state`` and
``update(param, grad, state, step, total_steps) -> (direction, new_state)``. The harness owns the LR
sweep, the schedule (linear warmup + cosine) and decoupled weight decay, and applies
``p <- p - lr * s(t) * direction - lr * s(t) * wd * p``. What a rule may know is said, not left to be
inferred: the step and the total number of steps are arguments (as in AlgoPerf), and shapes are
visible (keying on them gains nothing on the tiers that pick and judge: validate and held-out show
shapes select never does). What crosses back is checked exactly: the direction and every state entry
must be a plain ``torch.Tensor`` (``type(x) is torch.Tensor``, never a subclass that would see the
harness's later tensor operations), of the parameter's dtype and device, without autograd history; the
rule is handed copies of the parameter and gradient, so it cannot write through them.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
from torch.func import grad, vmap

from problems.optimizer_discovery.tasks import Params, Task

LR_GRID = tuple(10 ** (-4 + 0.5 * i) for i in range(9))  # 1e-4 ... 1, half-decade steps
# The second round around the best grid LR, in decades: the same refinement the AdamW baseline gets.
REFINE_DECADES = (-3 / 8, -2 / 8, -1 / 8, 1 / 8, 2 / 8, 3 / 8)
WARMUP_FRACTION = 0.05

InitFn = Callable[[torch.Tensor], dict[str, torch.Tensor]]
UpdateFn = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]


class RuleContractError(ValueError):
    """The rule returned something the harness cannot apply (wrong shape, not a plain tensor...)."""


def schedule(step: int, steps: int) -> float:
    """Multiplier of the base LR at ``step`` (1-based): linear warmup, then cosine to zero."""
    warm = max(1, int(WARMUP_FRACTION * steps))
    if step <= warm:
        return step / warm
    progress = (step - warm) / max(1, steps - warm)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def refined(centre: float) -> list[float]:
    return [centre * 10**d for d in REFINE_DECADES]


def _plain(value: Any, like: torch.Tensor, what: str, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """``value`` if it is exactly a plain tensor of ``like``'s dtype and device (and ``shape``), without
    autograd history; else a contract error naming what was wrong."""
    if type(value) is not torch.Tensor:
        raise RuleContractError(f"{what} must be a torch.Tensor, got {type(value).__name__}")
    if value.dtype != like.dtype or value.device != like.device:
        raise RuleContractError(f"{what} must be {like.dtype} on {like.device}, got {value.dtype} on {value.device}")
    if shape is not None and tuple(value.shape) != shape:
        raise RuleContractError(f"{what} must be shaped {shape}, got {tuple(value.shape)}")
    if value.requires_grad or value.grad_fn is not None:
        raise RuleContractError(f"{what} must not carry autograd history")
    return value


def _state(value: Any, like: torch.Tensor, batch: int | None) -> dict[str, torch.Tensor]:
    if type(value) is not dict or not all(type(k) is str for k in value):
        raise RuleContractError(f"the state must be a dict of tensors keyed by name, got {type(value).__name__}")
    out = {}
    for k, v in value.items():
        t = _plain(v, like, f"state entry {k!r}")
        if batch is not None and (t.dim() == 0 or t.shape[0] != batch):
            raise RuleContractError(f"state entry {k!r} must be a tensor per parameter (batched over learning rates)")
        out[k] = t
    return out


def takes_total_steps(update: UpdateFn) -> bool:
    """Rules written for harness 3 take (param, grad, state, step): still accepted."""
    try:
        params = [
            p
            for p in inspect.signature(update).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return True
    return len(params) >= 5


Rule = tuple[InitFn, UpdateFn]
RuleFactory = Callable[[], Rule]


def train(
    task: Task,
    init_state: InitFn,
    update: UpdateFn,
    seed: int,
    steps: int,
    lrs: tuple[float, ...] | list[float] = LR_GRID,
    vectorise: bool = True,
    per_lr: list[Rule] | None = None,
) -> dict[str, torch.Tensor]:
    """Train one copy of the model per learning rate; return the final parameters stacked on dim 0.

    ``per_lr`` (sequential only) gives each LR's copy its own instance of the rule, so that copies
    cannot share anything through the rule's module.
    """
    torch.manual_seed(seed)
    base = task.init_params(seed)
    lr_vec = torch.as_tensor(list(lrs), dtype=torch.float32, device=task.device)
    k = len(lr_vec)
    gen = task.batches(seed)
    if vectorise:
        params = {n: p.unsqueeze(0).repeat(k, *([1] * p.dim())) for n, p in base.items()}
        state = {n: _state(vmap(init_state)(p.clone()), p, k) for n, p in params.items()}
        grad_fn = vmap(grad(task.loss), in_dims=(0, None))
        extra = (steps,) if takes_total_steps(update) else ()
        step_fn = vmap(update, in_dims=(0, 0, 0, None, *([None] * len(extra))))
        for step in range(1, steps + 1):
            batch = task.make_batch(gen)
            grads = grad_fn(params, batch)
            mult = schedule(step, steps)
            for n, p in params.items():
                direction, new_state = step_fn(p.clone(), grads[n].clone(), state[n], step, *extra)
                state[n] = _state(new_state, p, k)
                eta = (mult * lr_vec).reshape(-1, *([1] * (p.dim() - 1)))
                params[n] = (
                    p - eta * _plain(direction, p, "the direction", tuple(p.shape)) - eta * task.weight_decay * p
                ).detach()
        return params
    # Sequential fallback for rules vmap cannot batch (data-dependent Python control flow...).
    rules = per_lr or [(init_state, update)] * k
    copies: list[Params] = [{n: p.clone() for n, p in base.items()} for _ in range(k)]
    seq_states = [{n: _state(rules[i][0](p.clone()), p, None) for n, p in c.items()} for i, c in enumerate(copies)]
    g = grad(task.loss)
    extras = [(steps,) if takes_total_steps(rule[1]) else () for rule in rules]
    for step in range(1, steps + 1):
        batch = task.make_batch(gen)
        mult = schedule(step, steps)
        for i in range(k):
            grads = g(copies[i], batch)
            for n, p in copies[i].items():
                direction, new_state = rules[i][1](p.clone(), grads[n].clone(), seq_states[i][n], step, *extras[i])
                seq_states[i][n] = _state(new_state, p, None)
                eta = mult * float(lr_vec[i])
                copies[i][n] = (
                    p - eta * _plain(direction, p, "the direction", tuple(p.shape)) - eta * task.weight_decay * p
                ).detach()
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


def initial_loss(task: Task, seeds: tuple[int, ...]) -> float:
    """The validation loss before training, averaged over seeds: a rule that ends above it made no progress."""
    return sum(val_losses(task, {n: p.unsqueeze(0) for n, p in task.init_params(s).items()})[0] for s in seeds) / len(
        seeds
    )


def run_rule(
    task: Task,
    make_rule: RuleFactory,
    seeds: tuple[int, ...],
    steps: int,
    lrs: tuple[float, ...] | list[float] = LR_GRID,
) -> tuple[dict[int, dict[str, torch.Tensor]], bool]:
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
        out[seed] = train(
            task, *make_rule(), seed, steps, lrs, vectorise=False, per_lr=[make_rule() for _ in range(len(lrs))]
        )
    return out, vectorise


def _is_vmap_limitation(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(s in text for s in ("vmap", "batched tensor", "data-dependent", ".item()", "batching rule", "functorch"))


# -- choosing the best learning rate -----------------------------------------------------------
def lr_means(losses_by_seed: list[list[float]]) -> list[float]:
    """Mean validation loss over seeds, per learning rate (per configuration)."""
    k = len(losses_by_seed[0])
    return [sum(s[i] for s in losses_by_seed) / len(losses_by_seed) for i in range(k)]


def best_loss(losses_by_seed: list[list[float]]) -> tuple[float, int]:
    """The best mean-over-seeds loss and its index (the LR, or configuration, that reached it)."""
    means = lr_means(losses_by_seed)
    idx = min(range(len(means)), key=lambda i: means[i])
    return means[idx], idx
