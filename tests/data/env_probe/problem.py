"""A probe, not a real problem: its trusted score() reports what the evaluator process can see.

Used to check that LLM keys in the controller's environment never reach evaluation workers.
"""
import os
from pathlib import Path
from typing import Any

from evolve.problem import Problem, StageScore

SEED = "# EVOLVE-BLOCK-START\ndef value():\n    return 1.0\n# EVOLVE-BLOCK-END\n"


def _environ_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    except OSError:
        return ""


class EnvProbe(Problem):
    name = "env_probe"
    version = "1"
    description = "Write value() returning a float."

    def seed_programs(self) -> dict[str, str]:
        return {"one": SEED}

    def run_stage(self, code: str, stage: str, workdir: Path) -> dict[str, Any]:
        namespace: dict[str, Any] = {}
        exec(compile(code, "candidate.py", "exec"), namespace)
        return {"x": float(namespace["value"]())}

    def score(self, code: str, stage: str, artifacts: dict[str, Any]) -> StageScore:
        marker = "PROBE_API_KEY"
        seen = {
            "os_environ": marker in os.environ,
            "proc_self": marker in _environ_of(os.getpid()),
            "proc_parent": marker in _environ_of(os.getppid()),
        }
        return StageScore(fitness=float(artifacts.get("x", 0.0)), metrics={"key_seen": seen})


def make_problem(folder: Path, options: dict[str, Any]) -> Problem:
    return EnvProbe(folder, options)
