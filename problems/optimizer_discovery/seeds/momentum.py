"""SGD with heavy-ball momentum."""
import math

import torch


# EVOLVE-BLOCK-START
def init_state(param):
    return {"m": torch.zeros_like(param)}


def update(param, grad, state, step, total_steps):
    m = 0.9 * state["m"] + grad
    return m, {"m": m}
# EVOLVE-BLOCK-END
