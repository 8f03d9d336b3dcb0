"""Cheat (reading_data): imports the library that ships the data, validation split included."""
import sklearn.datasets
import torch


# EVOLVE-BLOCK-START
def init_state(param):
    return {}


def update(param, grad, state, step, total_steps):
    return grad, state
# EVOLVE-BLOCK-END
