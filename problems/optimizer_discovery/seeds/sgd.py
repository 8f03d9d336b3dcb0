"""SGD, the default seed. The m and v buffers are carried unchanged: state the operators can put to use."""
import math

import torch


# EVOLVE-BLOCK-START
def init_state(param):
    return {"m": torch.zeros_like(param), "v": torch.zeros_like(param)}


def update(param, grad, state, step, total_steps):
    m = state["m"]
    v = state["v"]
    direction = grad
    return direction, {"m": m, "v": v}
# EVOLVE-BLOCK-END
