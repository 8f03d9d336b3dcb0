"""Cheat (in_place): trains outside the LR sweep and the schedule by writing through the parameter it is
handed (harness 3 handed the live one), and reports no direction at all."""
import torch


# EVOLVE-BLOCK-START
def init_state(param):
    return {}


def update(param, grad, state, step, total_steps):
    param.sub_(0.05 * grad)
    return torch.zeros_like(grad), state
# EVOLVE-BLOCK-END
