"""RMSProp: gradient scaled by a running RMS."""
import math

import torch


# EVOLVE-BLOCK-START
def init_state(param):
    return {"v": torch.zeros_like(param)}


def update(param, grad, state, step, total_steps):
    v = 0.99 * state["v"] + 0.01 * grad * grad
    return grad / (torch.sqrt(v) + 1e-8), {"v": v}
# EVOLVE-BLOCK-END
