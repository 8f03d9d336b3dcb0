"""Signum (Bernstein et al. 2018): the sign of the momentum."""

import torch


# EVOLVE-BLOCK-START
def init_state(param):
    return {"m": torch.zeros_like(param)}


def update(param, grad, state, step, total_steps):
    m = 0.9 * state["m"] + 0.1 * grad
    return torch.sign(m), {"m": m}


# EVOLVE-BLOCK-END
