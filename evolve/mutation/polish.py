"""Polish: tune a program's numeric constants with CMA-ES (the ``cma`` package), each trial a child.

A program that became an island's best is a structure worth keeping; its float literals (a decay, an
epsilon, a coefficient) were set by chance. A polish is one CMA-ES run over them: each trial is a normal
child (operator ``polish``, parent the program, the constants it changed in ``operator_info``) that is
deduplicated, probed, trained and placed like any other, and spends the budget. CMA-ES works in
generations: a generation's trials are handed out, and the next generation is sampled once all of them are
known, so the order in which results land never changes what is sampled.

Constants move on the scale they act on: a constant in (0, 1) on the logit scale, which is the log scale for
a small one (an epsilon, a coefficient) and the log of its distance to 1 for a decay (0.9 -> 0.99 is one
step, and a decay stays below 1); a larger one as ``c * exp(z)``. 0 and 1 are structure (``1 - beta``, a zero
start), not tuning, and are left alone.

State: every session is rebuilt on resume from the polish children in the archive, replaying the same
generator (seeded by the run's seed and the program's id) and the values of the trials already known.
"""

from __future__ import annotations

import ast
import functools
import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evolve.config import PolishConfig
from evolve.mutation.ast_ops import _parse_blocks, _unparse_blocks
from evolve.mutation.base import OperatorContext, Proposal
from evolve.program import Program, Status

with warnings.catch_warnings():  # cma warns at import that matplotlib (its plots) is absent: not used here
    warnings.simplefilter("ignore")
    import cma

POLISH_OPERATOR = "polish"
STRUCTURAL = (0.0, 1.0)


@functools.lru_cache(maxsize=256)
def tunable_constants(code: str) -> tuple[float, ...]:
    """The float literals of the EVOLVE blocks a polish tunes, in source order."""
    return tuple(v for node in _constant_nodes(_parse_blocks(code)) if isinstance(v := node.value, float))


def _constant_nodes(trees: list[ast.Module]) -> list[ast.Constant]:
    found = [
        node
        for tree in trees
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and type(node.value) is float
        and math.isfinite(node.value)
        and node.value not in STRUCTURAL
    ]
    return sorted(found, key=lambda n: (trees.index(_tree_of(trees, n)), n.lineno, n.col_offset))


def _tree_of(trees: list[ast.Module], node: ast.AST) -> ast.Module:
    return next(t for t in trees if any(n is node for n in ast.walk(t)))


def moved(c: float, z: float) -> float:
    """Constant ``c`` moved by ``z`` on its scale (see the module docstring), to 4 significant digits (of its
    distance to 1, for a value above 0.5 that stays below 1)."""
    if 0.0 < c < 1.0:
        value = 1.0 / (1.0 + math.exp(-(math.log(c / (1.0 - c)) + z)))
        if value > 0.5:
            return 1.0 - float(f"{1.0 - value:.4g}")
    else:
        value = c * math.exp(z)
    return float(f"{value:.4g}")


def with_constants(code: str, count: int, values: Iterable[float]) -> str:
    """``code`` with its first ``count`` tunable constants replaced by ``values``."""
    trees = _parse_blocks(code)
    for node, value in zip(_constant_nodes(trees)[:count], values, strict=True):
        node.value = value  # a negative value is unparsed as a unary minus, which parses back the same
    return _unparse_blocks(code, trees)


@dataclass
class _Trial:
    index: int
    generation: int
    z: list[float]
    value: float | None = None  # what CMA-ES minimises: minus the search fitness (see Polisher.value)


@dataclass
class PolishSession:
    """One CMA-ES run over one program's constants."""

    target: Program
    cfg: PolishConfig
    run_seed: int
    trials: list[_Trial] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.base = tunable_constants(self.target.code)[: self.cfg.max_constants]
        rng = np.random.default_rng([self.run_seed, self.target.stored_id])
        options: dict[str, Any] = {
            "seed": math.nan,  # leave numpy's global generator alone: the samples come from ``rng``
            "randn": lambda lam, n: rng.standard_normal((lam, n)),
            "verbose": -9,
            "verb_log": 0,
            "verb_disp": 0,
        }
        if self.cfg.population is not None:
            options["popsize"] = self.cfg.population
        self.es = cma.CMAEvolutionStrategy([0.0] * len(self.base), self.cfg.sigma, options)
        self.generation: list[_Trial] = []

    @property
    def done(self) -> bool:
        return len(self.trials) >= self.cfg.trials and all(t.value is not None for t in self.trials)

    def next_trial(self) -> _Trial | None:
        """The next trial to write, or None while the generation's results are awaited (or all are out)."""
        if len(self.trials) >= self.cfg.trials:
            return None
        if not self.generation or all(t.value is not None for t in self.generation):
            if self.generation:  # the whole generation is known: CMA-ES learns from it, then samples anew
                self.es.tell([np.array(t.z) for t in self.generation], [t.value for t in self.generation])
            number = 1 + (self.generation[0].generation if self.generation else 0)
            self.generation = [_Trial(-1, number, [float(v) for v in x]) for x in self.es.ask()]
        waiting = [t for t in self.generation if t.index < 0]
        if not waiting:
            return None
        trial = waiting[0]
        trial.index = len(self.trials)
        self.trials.append(trial)
        return trial

    def code_of(self, trial: _Trial) -> tuple[str, dict[str, Any]]:
        values = [moved(c, z) for c, z in zip(self.base, trial.z, strict=True)]
        info = {
            "polish_of": self.target.stored_id,
            "trial": trial.index,
            "generation": trial.generation,
            "constants": [{"from": c, "to": v} for c, v in zip(self.base, values, strict=True) if c != v],
        }
        return with_constants(self.target.code, len(self.base), values), info


class PolishTrial:
    """The operator of one trial: its code is the session's, written when the trial was handed out."""

    name = POLISH_OPERATOR
    num_parents = 1
    blocking = False

    def __init__(self, code: str, info: dict[str, Any]) -> None:
        self.code, self.info = code, info

    def propose(self, parents: list[Program], ctx: OperatorContext) -> Proposal:
        return Proposal(self.code, dict(self.info))


class Polisher:
    """Which program is being polished, its trials, and what their results taught CMA-ES.

    ``fitness_of`` looks up a stored program's search fitness (what a duplicate trial is worth).
    """

    def __init__(self, cfg: PolishConfig, run_seed: int, fitness_of: Callable[[int], float | None]) -> None:
        self.cfg, self.run_seed, self.fitness_of = cfg, run_seed, fitness_of
        self.sessions: dict[int, PolishSession] = {}  # by target id, in the order they started
        self.children = 0  # polish children written (the share of the budget they take)

    @property
    def active(self) -> list[PolishSession]:
        return [s for s in self.sessions.values() if not s.done]

    def restore(self, targets: Callable[[int], Program], children: list[Program]) -> None:
        """Rebuild the sessions from the run's polish children, in the order they were written."""
        for child in children:
            info = child.operator_info
            target = int(info["polish_of"])
            if target not in self.sessions:
                self.sessions[target] = PolishSession(targets(target), self.cfg, self.run_seed)
            trial = self.sessions[target].next_trial()
            if trial is None or trial.index != int(info["trial"]):
                raise ValueError(f"program {child.id}: polish trial {info['trial']} does not replay")
            self.children += 1
            if (value := self.value(child)) is not None:
                trial.value = value

    def want(self, candidates: Iterable[Program], submitted: int) -> bool:
        """Start polishing the best of ``candidates`` (the islands' bests) not polished yet, if a session is
        free and the polish share of the budget allows it."""
        if not self.cfg.enabled or len(self.active) >= self.cfg.max_active or not self._share_left(submitted):
            return False
        fresh = [
            p
            for p in candidates
            if p.fitness is not None
            and p.operator != POLISH_OPERATOR
            and p.stored_id not in self.sessions
            and tunable_constants(p.code)
        ]
        if not fresh:
            return False
        best = max(fresh, key=lambda p: (p.fitness, -p.stored_id))
        self.sessions[best.stored_id] = PolishSession(best, self.cfg, self.run_seed)
        return True

    def _share_left(self, submitted: int) -> bool:
        return self.children < self.cfg.max_share * max(submitted, 1)

    def next_trial(self, submitted: int) -> tuple[Program, PolishTrial] | None:
        """A trial to write now (its target and operator), if any session has one and the share allows."""
        if not self._share_left(submitted):
            return None
        for session in self.active:
            trial = session.next_trial()
            if trial is not None:
                self.children += 1
                return session.target, PolishTrial(*session.code_of(trial))
        return None

    def tell(self, child: Program) -> None:
        """A polish child's outcome, once known (rejected, a duplicate, failed or trained)."""
        if child.operator != POLISH_OPERATOR:
            return
        session = self.sessions.get(int(child.operator_info["polish_of"]))
        value = self.value(child)
        if session is not None and value is not None:
            session.trials[int(child.operator_info["trial"])].value = value

    def value(self, child: Program) -> float | None:
        """What CMA-ES minimises for a finished trial: minus its search fitness; a duplicate is worth what its
        original scored; a trial that failed or was refused ranks below its target by a margin. None while
        the outcome is unknown."""
        if child.status in (Status.PROPOSED, Status.EVALUATING):
            return None
        if child.fitness is not None:
            return -child.fitness
        original = self.fitness_of(child.duplicate_of) if child.duplicate_of is not None else None
        if original is not None:
            return -original
        target = self.fitness_of(int(child.operator_info["polish_of"])) or 0.0
        return -target + max(1.0, abs(target))
