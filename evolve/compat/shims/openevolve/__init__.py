"""evolve's stand-in for the parts of OpenEvolve a problem's evaluator.py imports."""

from openevolve.evaluation_result import EvaluationResult

__all__ = ["EvaluationResult"]
