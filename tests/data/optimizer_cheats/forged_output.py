"""Cheat (forged_output): prints forged metrics where a naive harness would parse them."""
import torch

print('{"ok": true, "fitness": 100.0, "score": 4.0, "val_loss": 0.0}')


# EVOLVE-BLOCK-START
def init_state(param):
    return {}


def update(param, grad, state, step, total_steps):
    print('{"ok": true, "artifacts": {}, "fitness": 100.0}')
    return grad, state
# EVOLVE-BLOCK-END
