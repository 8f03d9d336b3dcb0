"""Which backend evaluates a run's jobs: process or Ray, behind the optional cross-run cache."""

from __future__ import annotations

import os
from pathlib import Path

from evaluators import jail
from evaluators.backend import ProcessBackend, RayBackend
from evaluators.cache import CachedBackend, EvalCache, problem_key
from evaluators.jobs import Backend
from evolve.config import EvaluatorConfig
from evolve.loader import ProblemRef

# The evaluator keys a cached result depends on: one obtained under looser limits must not answer for tighter ones.
LIMIT_KEYS = {
    "timeout_s",
    "memory_mb",
    "cpu_seconds",
    "file_mb",
    "disk_mb",
    "max_processes",
    "max_result_kb",
    "max_artifact_mb",
    "max_output_chars",
    "num_cpus",
    "num_gpus",
    "isolation",
}


def make_backend(ref: ProblemRef, cfg: EvaluatorConfig, slots: int, hidden: tuple[str, ...] = ()) -> Backend:
    """``hidden``: paths no candidate may see even where they lie inside a folder the jail binds (the run
    directory; the cache is added here)."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    jail.require(cfg.isolation)  # fail closed before anything starts
    if cfg.cache_path:
        hidden = (*hidden, str(Path(cfg.cache_path).resolve().parent))
    backend: Backend = (
        RayBackend(ref, cfg, slots, hidden) if cfg.backend == "ray" else ProcessBackend(ref, cfg, slots, hidden)
    )
    if cfg.cache_path:
        limits = cfg.model_dump(include=LIMIT_KEYS)
        key = problem_key(ref.load(), ref.options, limits)
        backend = CachedBackend(backend, EvalCache(cfg.cache_path, key))
    return backend
