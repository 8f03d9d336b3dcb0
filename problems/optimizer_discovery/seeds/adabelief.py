"""AdaBelief (Zhuang et al. 2020): second moment of the gradient's deviation from its EMA."""
import math

import torch


# EVOLVE-BLOCK-START
def init_state(param):
    return {"m": torch.zeros_like(param), "s": torch.zeros_like(param)}


def update(param, grad, state, step, total_steps):
    m = 0.9 * state["m"] + 0.1 * grad
    s = 0.999 * state["s"] + 0.001 * (grad - m) * (grad - m) + 1e-16
    m_hat = m / (1 - 0.9 ** step)
    s_hat = s / (1 - 0.999 ** step)
    return m_hat / (torch.sqrt(s_hat) + 1e-8), {"m": m, "s": s}
# EVOLVE-BLOCK-END
