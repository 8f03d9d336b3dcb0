"""Adamax (Kingma and Ba 2015): Adam with the infinity norm of past gradients in place of the second moment."""

import torch


# EVOLVE-BLOCK-START
def init_state(param):
    return {"m": torch.zeros_like(param), "u": torch.zeros_like(param)}


def update(param, grad, state, step, total_steps):
    m = 0.9 * state["m"] + 0.1 * grad
    u = torch.maximum(0.999 * state["u"], torch.abs(grad))
    return m / (1 - 0.9**step) / (u + 1e-8), {"m": m, "u": u}


# EVOLVE-BLOCK-END
