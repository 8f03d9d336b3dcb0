"""AdamW with the textbook beta2 = 0.999 (the baseline also tunes beta2); the harness applies the LR,
the schedule and the decoupled weight decay."""
import math

import torch


# EVOLVE-BLOCK-START
def init_state(param):
    return {"m": torch.zeros_like(param), "v": torch.zeros_like(param)}


def update(param, grad, state, step, total_steps):
    m = 0.9 * state["m"] + (1 - 0.9) * grad
    v = 0.999 * state["v"] + (1 - 0.999) * grad * grad
    m_hat = m / (1 - 0.9 ** step)
    v_hat = v / (1 - 0.999 ** step)
    return m_hat / (torch.sqrt(v_hat) + 1e-8), {"m": m, "v": v}
# EVOLVE-BLOCK-END
