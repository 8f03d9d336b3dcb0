"""Adan (Xie et al. 2022): Nesterov-style momentum on gradient differences."""
import math

import torch


# EVOLVE-BLOCK-START
def init_state(param):
    return {"m": torch.zeros_like(param), "d": torch.zeros_like(param), "n": torch.zeros_like(param),
            "prev": torch.zeros_like(param)}


def update(param, grad, state, step, total_steps):
    diff = grad - state["prev"] if step > 1 else torch.zeros_like(grad)
    m = 0.98 * state["m"] + 0.02 * grad
    d = 0.92 * state["d"] + 0.08 * diff
    mixed = grad + 0.92 * diff
    n = 0.99 * state["n"] + 0.01 * mixed * mixed
    m_hat = m / (1 - 0.98 ** step)
    d_hat = d / (1 - 0.92 ** step)
    n_hat = n / (1 - 0.99 ** step)
    direction = (m_hat + 0.92 * d_hat) / (torch.sqrt(n_hat) + 1e-8)
    return direction, {"m": m, "d": d, "n": n, "prev": grad}
# EVOLVE-BLOCK-END
