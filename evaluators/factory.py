"""Which backend evaluates a run's jobs: process or Ray, behind the optional cross-run cache."""

from __future__ import annotations

import dataclasses
import os

from evaluators.backend import ProcessBackend, RayBackend, limits_from
from evaluators.cache import CachedBackend, EvalCache, problem_key
from evaluators.jobs import Backend
from evolve.config import EvaluatorConfig
from evolve.loader import ProblemRef


def make_backend(ref: ProblemRef, cfg: EvaluatorConfig, slots: int) -> Backend:
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    backend: Backend = RayBackend(ref, cfg, slots) if cfg.backend == "ray" else ProcessBackend(ref, cfg, slots)
    if cfg.cache_path:
        key = problem_key(ref.load(), ref.options, dataclasses.asdict(limits_from(cfg)))
        backend = CachedBackend(backend, EvalCache(cfg.cache_path, key))
    return backend
