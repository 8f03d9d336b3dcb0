"""NAdam (Dozat 2016): Adam with a Nesterov look-ahead in the first moment (constant momentum schedule)."""

import torch


# EVOLVE-BLOCK-START
def init_state(param):
    return {"m": torch.zeros_like(param), "v": torch.zeros_like(param)}


def update(param, grad, state, step, total_steps):
    m = 0.9 * state["m"] + 0.1 * grad
    v = 0.999 * state["v"] + 0.001 * grad * grad
    m_hat = 0.9 * m / (1 - 0.9 ** (step + 1)) + 0.1 * grad / (1 - 0.9**step)
    v_hat = v / (1 - 0.999**step)
    return m_hat / (torch.sqrt(v_hat) + 1e-8), {"m": m, "v": v}


# EVOLVE-BLOCK-END
