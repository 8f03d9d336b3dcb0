"""Muon: Newton-Schulz-orthogonalised Nesterov momentum for matrices, AdamW for the rest."""
import math

import torch


# EVOLVE-BLOCK-START
def orthogonalise(g):
    transposed = g.shape[0] > g.shape[1]
    x = g.T if transposed else g
    x = x / (torch.linalg.matrix_norm(x) + 1e-7)
    for _ in range(5):
        a = x @ x.T
        x = 3.4445 * x + (-4.7750 * a + 2.0315 * a @ a) @ x
    return x.T if transposed else x


def init_state(param):
    if param.ndim == 2:
        return {"m": torch.zeros_like(param)}
    return {"m": torch.zeros_like(param), "v": torch.zeros_like(param)}


def update(param, grad, state, step, total_steps):
    if param.ndim == 2:
        m = 0.95 * state["m"] + grad
        scale = math.sqrt(max(1.0, param.shape[0] / param.shape[1]))
        return scale * orthogonalise(grad + 0.95 * m), {"m": m}
    m = 0.9 * state["m"] + 0.1 * grad
    v = 0.999 * state["v"] + 0.001 * grad * grad
    m_hat = m / (1 - 0.9 ** step)
    v_hat = v / (1 - 0.999 ** step)
    return 0.1 * m_hat / (torch.sqrt(v_hat) + 1e-8), {"m": m, "v": v}
# EVOLVE-BLOCK-END
