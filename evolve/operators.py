"""The one operator registry: every operator a config may weight, and how a run builds them."""

from __future__ import annotations

from collections.abc import Callable

from evolve.config import ConfigError, OperatorsConfig
from evolve.llm.operators import LLM_OPERATORS, LLMTools, llm_operator
from evolve.mutation.base import Operator
from evolve.mutation.genetic import AstCrossover, AstMutate

GENETIC: dict[str, Callable[[OperatorsConfig], Operator]] = {
    "ast_mutate": lambda cfg: AstMutate(cfg.mutations_per_child, cfg.max_attempts),
    "ast_crossover": lambda cfg: AstCrossover(cfg.max_attempts),
}
KNOWN = (*GENETIC, *LLM_OPERATORS)


def build_operators(cfg: OperatorsConfig, llm: LLMTools | None) -> tuple[dict[str, Operator], dict[str, float]]:
    """The run's operators and their selection weights (zero-weight ones left out).

    Without LLM tools the LLM operators are left out (the run uses genetic operators only).
    """
    unknown = sorted(set(cfg.weights) - set(KNOWN))
    if unknown:
        raise ConfigError(f"operators.weights: unknown operator(s) {unknown} (known: {sorted(KNOWN)})")
    ops: dict[str, Operator] = {}
    for name, weight in cfg.weights.items():
        if weight <= 0:
            continue
        if name in GENETIC:
            ops[name] = GENETIC[name](cfg)
        elif llm is not None:
            ops[name] = llm_operator(name, llm)
    if not ops:
        raise ConfigError(
            "operators.weights: no usable operator (LLM operators need llm.models; "
            "give ast_mutate or ast_crossover a positive weight, or configure a model)"
        )
    return ops, {n: cfg.weights[n] for n in ops}


def uses_llm(cfg: OperatorsConfig) -> bool:
    return any(cfg.weights.get(name, 0) > 0 for name in LLM_OPERATORS)
