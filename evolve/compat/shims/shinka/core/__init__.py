"""``run_shinka_eval``: the evaluation wrapper ShinkaEvolve's evaluate.py scripts call."""

from shinka.core.wrap_eval import run_shinka_eval

__all__ = ["run_shinka_eval"]
