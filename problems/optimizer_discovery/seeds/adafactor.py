"""Adafactor-style factored second moments for matrices, with update clipping."""
import math

import torch


# EVOLVE-BLOCK-START
def init_state(param):
    if param.ndim == 2:
        return {"row": torch.zeros(param.shape[0]), "col": torch.zeros(param.shape[1])}
    return {"v": torch.zeros_like(param)}


def update(param, grad, state, step, total_steps):
    beta2 = 1.0 - step ** -0.8
    sq = grad * grad + 1e-30
    if param.ndim == 2:
        row = beta2 * state["row"] + (1 - beta2) * sq.mean(dim=1)
        col = beta2 * state["col"] + (1 - beta2) * sq.mean(dim=0)
        v = row[:, None] * col[None, :] / row.mean()
        new_state = {"row": row, "col": col}
    else:
        v = beta2 * state["v"] + (1 - beta2) * sq
        new_state = {"v": v}
    u = grad / torch.sqrt(v)
    u = u / torch.clamp(torch.sqrt((u * u).mean()), min=1.0)
    return u, new_state
# EVOLVE-BLOCK-END
