"""GPU-path probe for CPU machines: prepare() marks torch's CUDA state initialised, as a problem
that touched the GPU in prepare() would; run_stage reports what the candidate's process sees."""
import os
from pathlib import Path
from typing import Any

import torch

from evolve.problem import Problem, StageScore

SEED = "# EVOLVE-BLOCK-START\ndef value():\n    return 1.0\n# EVOLVE-BLOCK-END\n"


class CudaPrepare(Problem):
    name = "cuda_prepare"
    version = "1"
    description = "Write value() returning a float."

    def seed_programs(self) -> dict[str, str]:
        return {"one": SEED}

    def prepare(self) -> None:
        torch.cuda._initialized = True  # what torch.cuda.init() leaves behind on a GPU machine

    def run_stage(self, code: str, stage: str, workdir: Path) -> dict[str, Any]:
        namespace: dict[str, Any] = {}
        exec(compile(code, "candidate.py", "exec"), namespace)
        return {"x": float(namespace["value"]()), "cuda_state_inherited": bool(torch.cuda._initialized),
                "visible": os.environ.get("CUDA_VISIBLE_DEVICES"), "env": sorted(os.environ)}

    def score(self, code: str, stage: str, artifacts: dict[str, Any]) -> StageScore:
        return StageScore(fitness=float(artifacts["x"]), metrics=artifacts)


def make_problem(folder: Path, options: dict[str, Any]) -> Problem:
    return CudaPrepare(folder, options)
