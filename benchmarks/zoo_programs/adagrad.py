"""Adagrad (Duchi et al. 2011): the step divided by the root of the sum of all squared gradients so far."""

import torch


# EVOLVE-BLOCK-START
def init_state(param):
    return {"g2": torch.zeros_like(param)}


def update(param, grad, state, step, total_steps):
    g2 = state["g2"] + grad * grad
    return grad / (torch.sqrt(g2) + 1e-10), {"g2": g2}


# EVOLVE-BLOCK-END
