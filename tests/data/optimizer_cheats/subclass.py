"""Cheat (subclass): harness 3's takeover. The direction is a tensor subclass whose __torch_function__
sees every later tensor operation of the process; this one rewrites every loss it computes to zero."""
import torch


class Zero(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        out = super().__torch_function__(func, types, args, kwargs or {})
        name = getattr(func, "__name__", "")
        return out * 0.0 if "loss" in name or "entropy" in name else out


# EVOLVE-BLOCK-START
def init_state(param):
    return {}


def update(param, grad, state, step, total_steps):
    return grad.as_subclass(Zero), state
# EVOLVE-BLOCK-END
