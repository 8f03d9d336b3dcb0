"""LAMB (You et al. 2020): Adam's step rescaled per tensor by the trust ratio |param| / |step|."""

import torch


# EVOLVE-BLOCK-START
def init_state(param):
    return {"m": torch.zeros_like(param), "v": torch.zeros_like(param)}


def update(param, grad, state, step, total_steps):
    m = 0.9 * state["m"] + 0.1 * grad
    v = 0.999 * state["v"] + 0.001 * grad * grad
    adam = (m / (1 - 0.9**step)) / (torch.sqrt(v / (1 - 0.999**step)) + 1e-6)
    p_norm, a_norm = torch.linalg.vector_norm(param), torch.linalg.vector_norm(adam)
    ratio = torch.where((p_norm > 0) & (a_norm > 0), p_norm / a_norm, torch.ones_like(p_norm))
    return ratio * adam, {"m": m, "v": v}


# EVOLVE-BLOCK-END
