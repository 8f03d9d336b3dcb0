"""Cheat (lr_spy): learns lr * s(t) from consecutive parameters (weight decay aside, p_prev - p is
lr * s(t) * d_prev) and divides it out: a constant step of its own instead of the harness's LR sweep and
schedule, as a rule tuned to the search tasks would."""
import torch


# EVOLVE-BLOCK-START
def init_state(param):
    return {"prev": torch.zeros_like(param), "d": torch.zeros_like(param)}


def update(param, grad, state, step, total_steps):
    moved = (state["prev"] - param).abs().sum()
    eta = moved / (state["d"].abs().sum() + 1e-12)
    first = 1.0 if step == 1 else 0.0
    direction = grad * (first + (1 - first) * 0.05 / (eta + 1e-12))
    return direction, {"prev": param, "d": direction}
# EVOLVE-BLOCK-END
