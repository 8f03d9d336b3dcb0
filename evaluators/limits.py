"""The limits of one candidate stage: one typed object, resolved once from the evaluator's config and the
stage, that travels unchanged (as JSON) to the jailed child, which applies it to itself.

The config (:class:`evolve.config.EvaluatorConfig`) holds every default; this module holds none.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the jailed side imports this module: it stays free of pydantic and the engine
    from evolve.config import EvaluatorConfig
    from evolve.problem import Stage

DEFAULT_TIMEOUT_S = 60.0  # for a stage that declares no limit of its own (and no evaluator.timeout_s)


def wall_seconds(cfg: EvaluatorConfig, stage: Stage) -> float:
    """A stage runs under the smaller of the evaluator's and its own wall-clock limit."""
    own = [t for t in (cfg.timeout_s, stage.timeout_s) if t is not None]
    return min(own) if own else DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class StageLimits:
    """What a candidate stage may use. Per process (rlimits, applied by the child to itself): address
    space, CPU time, file size. For the candidate as a whole (its jail's cgroups and tmpfs): memory,
    CPU share, process count, disk. On the way back (enforced by the server and the caller): output,
    result and artifact bytes."""

    wall_s: float
    cpu_s: int  # RLIMIT_CPU per process (the cgroup's CPU share bounds the whole candidate)
    cpus: float  # cgroup CPU quota, in cores
    memory_mb: int  # memory cgroup of the whole candidate; also RLIMIT_AS per process unless a GPU job
    address_space: bool  # RLIMIT_AS applies (not to GPU candidates: CUDA reserves huge address ranges)
    gpu_memory_fraction: float | None
    file_mb: int  # RLIMIT_FSIZE per file, and the most output a candidate may write before it is stopped
    disk_mb: int  # the jail's tmpfs (/tmp, where the working directory lives)
    max_processes: int
    output_chars: int
    result_bytes: int  # the result's JSON
    artifact_bytes: int  # the raw-bytes artifacts beside it, together

    @classmethod
    def for_stage(cls, cfg: EvaluatorConfig, stage: Stage) -> StageLimits:
        wall = wall_seconds(cfg, stage)
        gpu = cfg.num_gpus > 0
        return cls(
            wall_s=wall,
            cpu_s=cfg.cpu_seconds if cfg.cpu_seconds is not None else int(math.ceil(wall)) + 5,
            cpus=cfg.num_cpus,
            memory_mb=cfg.memory_mb,
            address_space=not gpu,
            gpu_memory_fraction=cfg.num_gpus if 0 < cfg.num_gpus < 1 else None,
            file_mb=cfg.file_mb,
            disk_mb=cfg.disk_mb,
            max_processes=cfg.max_processes,
            output_chars=cfg.max_output_chars,
            result_bytes=cfg.max_result_kb * 1024,
            artifact_bytes=cfg.max_artifact_mb * 1024 * 1024,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StageLimits:
        return cls(**data)
