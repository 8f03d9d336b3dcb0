"""Lion (Chen et al. 2023): the sign of an interpolated momentum."""
import math

import torch


# EVOLVE-BLOCK-START
def init_state(param):
    return {"m": torch.zeros_like(param)}


def update(param, grad, state, step, total_steps):
    m = state["m"]
    direction = torch.sign(0.9 * m + 0.1 * grad)
    m = 0.99 * m + 0.01 * grad
    return direction, {"m": m}
# EVOLVE-BLOCK-END
