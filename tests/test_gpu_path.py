"""The GPU tier's plumbing, tested on the CPU (CI has no GPU), and the same paths on a real GPU where
one is visible: device option, cache keys by device kind, the GPU suite, packing limits, the warm
server that never touches CUDA, and CUDA out-of-memory classified as `memory`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from evaluators.cascade import evaluate
from evaluators.jobs import EvalJob
from evaluators.limits import StageLimits
from evolve.config import EvaluatorConfig
from evolve.loader import ProblemRef, builtin_problems, load_problem_folder
from evolve.problem import ProblemError, Stage
from problems.optimizer_discovery.baselines import cache_key
from problems.optimizer_discovery.problem import load_rule, resolve_device
from problems.optimizer_discovery.suites import SUITES, get_task, task_steps

FOLDER = builtin_problems()["optimizer_discovery"]
HAS_CUDA = torch.cuda.is_available()
SEEDS = load_problem_folder(FOLDER, {}).seed_programs()


def test_the_device_option_is_checked_and_resolved_where_it_is_used() -> None:
    with pytest.raises(ProblemError, match="device"):
        load_problem_folder(FOLDER, {"device": "tpu"})
    problem = load_problem_folder(FOLDER, {"device": "auto"})
    assert problem.device == ("cuda" if HAS_CUDA else "cpu")
    assert resolve_device("cpu") == "cpu"
    if not HAS_CUDA:
        with pytest.raises(Exception, match="no CUDA device is visible"):
            resolve_device("cuda")


@pytest.mark.skipif(HAS_CUDA, reason="checks the message a GPU-less evaluator gives")
def test_asking_for_cuda_without_one_fails_the_seed_clearly() -> None:
    r = evaluate(
        EvalJob(1, SEEDS["adamw"]),
        ProblemRef(str(FOLDER), {"device": "cuda", "seeds": [0]}),
        EvaluatorConfig(timeout_s=60, memory_mb=4096),
    )
    assert not r.ok and r.failure_kind == "contract" and "no CUDA device is visible" in (r.reason or "")


def test_curves_are_keyed_by_device_kind() -> None:
    assert cache_key("char_lm", "cpu", (0, 1)).startswith("v4/cpu/char_lm/")
    assert cache_key("char_lm", "cuda:1", (0, 1)).startswith("v4/cuda/char_lm/")
    assert cache_key("char_lm_gpu", "cuda", (0, 1)).endswith(f"/n{task_steps('char_lm_gpu')}/seeds0-1")


def test_the_gpu_suite_has_every_role_with_larger_tasks() -> None:
    cpu, gpu = SUITES["cpu"], SUITES["gpu"]
    assert set(gpu) == set(cpu) and all(gpu[r] for r in gpu)
    assert set(gpu["select"]).isdisjoint(gpu["validate"]) and set(gpu["validate"]).isdisjoint(gpu["heldout"])
    problem = load_problem_folder(FOLDER, {"suite": "gpu"})
    assert problem.tasks_for("select") == gpu["select"]
    small = get_task("char_lm_gpu")  # the smallest GPU task builds and trains on a CPU too
    params = {n: p.unsqueeze(0) for n, p in small.init_params(0).items()}
    cpu_params = sum(p.numel() for p in get_task("char_lm").init_params(0).values())
    assert sum(p.numel() for p in params.values()) > 10 * cpu_params
    assert task_steps("char_lm_gpu") > task_steps("char_lm")


def test_packing_limits_follow_num_gpus() -> None:
    whole = StageLimits.for_stage(EvaluatorConfig(num_gpus=1), Stage("s"))
    quarter = StageLimits.for_stage(EvaluatorConfig(num_gpus=0.25, memory_mb=8192), Stage("s"))
    cpu = StageLimits.for_stage(EvaluatorConfig(), Stage("s"))
    assert cpu.address_space is True and cpu.gpu_memory_fraction is None
    assert whole.address_space is False and whole.gpu_memory_fraction is None
    assert quarter.gpu_memory_fraction == 0.25 and quarter.address_space is False and quarter.memory_mb == 8192


@pytest.mark.slow
def test_prepare_never_initialises_cuda_for_a_gpu_problem() -> None:
    """The warm server runs prepare() and then forks candidates: CUDA must still be untouched."""
    code = "\n".join(
        [
            "import torch, sys",
            f"sys.path.insert(0, {str(Path(__file__).parent.parent)!r})",
            "from evolve.loader import load_problem_folder",
            "from pathlib import Path",
            f"p = load_problem_folder(Path({str(FOLDER)!r}), {{'device': 'cuda'}})",
            "p.prepare()",
            "print('initialised', torch.cuda.is_initialized())",
        ]
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "")},
    )
    assert "initialised False" in out.stdout, out.stderr


def test_a_cuda_out_of_memory_is_a_memory_failure() -> None:
    from evaluators.child import _out_of_gpu_memory

    class OutOfMemoryError(RuntimeError):  # torch.cuda.OutOfMemoryError's name, without a GPU to raise it
        pass

    assert _out_of_gpu_memory(OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert _out_of_gpu_memory(RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"))
    assert not _out_of_gpu_memory(RuntimeError("shape mismatch"))


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU (CI has none): see benchmarks/gpu.py")
def test_a_rule_trains_on_the_gpu_and_scores_like_on_the_cpu() -> None:
    ref = ProblemRef(str(FOLDER), {"device": "cuda", "seeds": [0]})
    r = evaluate(EvalJob(1, SEEDS["adamw"]), ref, EvaluatorConfig(num_gpus=0.5, memory_mb=16384))
    assert r.ok, r.reason
    assert all(m["vectorised"] for m in r.metrics["filter"]["tasks"].values())


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU (CI has none): see benchmarks/gpu.py")
def test_a_candidate_over_its_gpu_share_fails_as_memory_alone() -> None:
    hog = SEEDS["sgd"].replace("    direction = grad", "    hog = torch.zeros(10**10)\n    direction = grad")
    ref = ProblemRef(str(FOLDER), {"device": "cuda", "seeds": [0]})
    limits = EvaluatorConfig(num_gpus=0.1, memory_mb=16384)
    r = evaluate(EvalJob(1, hog), ref, limits)
    assert not r.ok and r.failure_kind == "memory"
    assert evaluate(EvalJob(2, SEEDS["adamw"]), ref, limits).ok
    init_state, update = load_rule(SEEDS["adamw"])
    assert callable(update)
