"""AMSGrad (Reddi et al. 2018): Adam whose second moment never decreases."""

import torch


# EVOLVE-BLOCK-START
def init_state(param):
    return {"m": torch.zeros_like(param), "v": torch.zeros_like(param), "vmax": torch.zeros_like(param)}


def update(param, grad, state, step, total_steps):
    m = 0.9 * state["m"] + 0.1 * grad
    v = 0.999 * state["v"] + 0.001 * grad * grad
    vmax = torch.maximum(state["vmax"], v)
    m_hat = m / (1 - 0.9**step)
    v_hat = vmax / (1 - 0.999**step)
    return m_hat / (torch.sqrt(v_hat) + 1e-8), {"m": m, "v": v, "vmax": vmax}


# EVOLVE-BLOCK-END
