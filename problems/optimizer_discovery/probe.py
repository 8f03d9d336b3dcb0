"""The behaviour probe of an update rule: its directions for a fixed sequence of gradients on fixed
tensors. It fingerprints behaviour (scale-free: a rule times a constant is the same rule) and gives the
MAP-Elites descriptors (what the algorithm does, not its scale)."""

from __future__ import annotations

import math
from typing import Any

import torch

from problems.optimizer_discovery.train import InitFn, RuleContractError, UpdateFn, takes_total_steps

PROBE_SHAPES = ((7,), (5, 3), (3, 6))
PROBE_STEPS = (1, 2, 3, 4, 5, 6, 1000, 1001)  # a late step too: rules that depend on the step count
PROBE_TOTAL = 2000


def _tensor(value: Any, shape: tuple[int, ...] | None, what: str) -> torch.Tensor:
    if type(value) is not torch.Tensor or not value.is_floating_point():
        raise RuleContractError(f"{what} must be a float torch.Tensor, got {type(value).__name__}")
    if shape is not None and tuple(value.shape) != shape:
        raise RuleContractError(f"{what} must be shaped {shape}, got {tuple(value.shape)}")
    return value


def probe(init_state: InitFn, update: UpdateFn) -> dict[str, Any]:
    """The rule's directions for a fixed sequence of gradients on fixed 1-D and 2-D parameters (and the
    gradients, for the descriptors): the same numbers for every program that computes the same update.

    In float64 (a rule and the same rule times a constant then agree to ~1e-16, far below the rounding
    of the fingerprint), and the probe's parameter moves along the normalised direction, so its path
    does not depend on the rule's scale either."""
    gen = torch.Generator().manual_seed(1234)
    out: dict[str, Any] = {}
    extra = (PROBE_TOTAL,) if takes_total_steps(update) else ()
    with torch.no_grad():
        for shape in PROBE_SHAPES:
            param = torch.randn(shape, generator=gen, dtype=torch.float64)
            state = _probe_state(init_state(param.clone()))
            directions, grads = [], []
            for i, step in enumerate(PROBE_STEPS):
                g = torch.randn(shape, generator=gen, dtype=torch.float64) * (10.0 ** (i % 3 - 1))  # 0.1, 1, 10
                direction, new_state = update(param.clone(), g.clone(), state, step, *extra)
                state = _probe_state(new_state)
                direction = _tensor(direction, tuple(param.shape), "the direction").to(torch.float64)
                directions.append([float(x) for x in direction.reshape(-1)])
                grads.append([float(x) for x in g.reshape(-1)])
                rms = float(direction.square().mean().sqrt())
                if math.isfinite(rms) and rms > 0:
                    param = param - 0.01 * direction / rms
            out["x".join(map(str, shape))] = {"directions": directions, "grads": grads}
    return out


def _probe_state(state: Any) -> dict[str, torch.Tensor]:
    if type(state) is not dict or not all(type(k) is str for k in state):
        raise RuleContractError("the state must be a dict of tensors keyed by name")
    return {k: _tensor(v, None, f"state entry {k!r}") for k, v in state.items()}


def scale_free(probed: dict[str, Any]) -> dict[str, list[list[float]]]:
    """The probe's directions divided by their RMS over all steps (per shape): a rule and the same rule times
    a constant (which the LR sweep undoes) have the same fingerprint."""
    out = {}
    for shape, entry in probed.items():
        flat = [x for row in entry["directions"] for x in row]
        rms = math.sqrt(sum(x * x for x in flat) / max(1, len(flat)))
        out[shape] = [[x / rms if rms > 0 and math.isfinite(rms) else 0.0 for x in row] for row in entry["directions"]]
    return out


def behaviour(probed: dict[str, Any]) -> dict[str, float]:
    """What the algorithm does, whatever its scale: how aligned its direction is with the gradient (SGD 1,
    momentum and preconditioners less), and how sign-like it is (signSGD/Lion 1, mean |d| / RMS d)."""
    alignment, signness = [], []
    for entry in probed.values():
        for d, g in zip(entry["directions"], entry["grads"], strict=True):
            dn = math.sqrt(sum(x * x for x in d))
            gn = math.sqrt(sum(x * x for x in g))
            if dn > 0 and gn > 0 and math.isfinite(dn):
                alignment.append(sum(a * b for a, b in zip(d, g, strict=True)) / (dn * gn))
                signness.append(sum(abs(x) for x in d) / len(d) / (dn / math.sqrt(len(d))))
    mean = lambda xs: sum(xs) / len(xs) if xs else 0.0
    return {"grad_alignment": max(-1.0, min(1.0, mean(alignment))), "sign_likeness": max(0.0, min(1.0, mean(signness)))}
