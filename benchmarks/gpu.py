"""The GPU tier's figures, in one command, on a machine with a CUDA GPU (issue 13).

    .venv/bin/python benchmarks/gpu.py [--quick] [--json OUT]

Measures, each on the same candidates (the zoo's seed programs):
  P3  the vmapped LR sweep against the same sweep run one LR at a time, on the GPU (goal >= 8x);
  P1  sandboxed evaluation wall time / in-process training time of one candidate (goal <= 1.2);
  P4  candidates per hour: the CPU suite on 2 CPU cores, the CPU suite on the GPU (packed), the GPU
      suite on the GPU (goal >= 20x on the CPU suite's tasks);
  packing: throughput and GPU memory with 1, 2, 4 and 8 candidates per GPU (Ray, fractional GPUs);
  the zoo under the GPU suite (search, validate and held-out fitness; AdamW tuned on the GPU).
The GPU suite's AdamW curves are measured first where missing (`python -m
problems.optimizer_discovery.baselines cuda gpu 1`; stored in adamw_curves.json for the next time),
together with the signal-above-noise figure of each GPU selection task.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from evaluators.jobs import EvalJob, JobKind  # noqa: E402
from evolve.config import EvaluatorConfig  # noqa: E402
from evolve.loader import ProblemRef, builtin_problems, load_problem_folder  # noqa: E402
from evolve.runner import evaluate_all  # noqa: E402
from problems.optimizer_discovery import baselines  # noqa: E402
from problems.optimizer_discovery.problem import load_rule  # noqa: E402
from problems.optimizer_discovery.suites import SUITES, get_task  # noqa: E402
from problems.optimizer_discovery.train import LR_GRID, train  # noqa: E402

FOLDER = builtin_problems()["optimizer_discovery"]
ZOO = load_problem_folder(FOLDER, {}).seed_programs()


def gpu_memory_mb() -> int:
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"], capture_output=True, text=True
    )
    return int(out.stdout.split()[0]) if out.returncode == 0 and out.stdout.strip() else -1


class MemoryPeak:
    """The GPU's peak used memory while a block runs (sampled by nvidia-smi)."""

    def __enter__(self) -> MemoryPeak:
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, gpu_memory_mb())
            time.sleep(0.5)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def signal_above_noise(device: str) -> list[dict[str, Any]]:
    rows = []
    for name in SUITES["gpu"]["select"]:
        curve = baselines.adamw_curve(name, device, baselines.baseline_seeds("gpu", name), "gpu")
        at_n, at_2n = baselines.seed_losses_at(curve, 2), baselines.seed_losses_at(curve, 3)
        mean_n, mean_2n = statistics.mean(at_n), statistics.mean(at_2n)
        se = statistics.stdev(at_n) / math.sqrt(2)
        rows.append(
            {
                "task": name,
                "gain_n_to_2n": mean_n - mean_2n,
                "se_2_seeds": se,
                "ratio": (mean_n - mean_2n) / se if se else math.inf,
            }
        )
    return rows


def p3_vmap_speedup(device: str, steps: int) -> dict[str, Any]:
    task = get_task("char_lm_gpu", device)
    init_state, update = load_rule(ZOO["adamw"])
    timings = {}
    for vectorise in (True, False):
        train(task, init_state, update, 0, 3, LR_GRID, vectorise=vectorise)  # warm-up (kernels, vmap tracing)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        train(task, init_state, update, 0, steps, LR_GRID, vectorise=vectorise)
        torch.cuda.synchronize()
        timings["vmap" if vectorise else "sequential"] = time.perf_counter() - t0
    return {**timings, "speedup": timings["sequential"] / timings["vmap"], "steps": steps, "lrs": len(LR_GRID)}


def p1_overhead(device: str) -> dict[str, Any]:
    """One candidate's whole select stage: sandboxed (fresh CUDA context per child) vs in-process."""
    problem = load_problem_folder(FOLDER, {"device": device, "suite": "gpu"})
    t0 = time.perf_counter()
    problem.run_stage(ZOO["adamw"], "select", Path("/tmp"))
    torch.cuda.synchronize()
    inside = time.perf_counter() - t0
    cfg = EvaluatorConfig(num_gpus=1, memory_mb=65536, timeout_s=3600)
    ref = ProblemRef(str(FOLDER), {"device": device, "suite": "gpu"})
    job = EvalJob(1, ZOO["adamw"], JobKind.SEARCH)
    t0 = time.perf_counter()
    result = evaluate_all(ref, cfg, [job], 1)[0]
    wall = time.perf_counter() - t0
    return {"in_process_s": inside, "evaluation_s": wall, "ratio": wall / inside, "ok": result.ok}


def throughput(suite: str, device: str, per_gpu: int, candidates: dict[str, str], backend: str) -> dict[str, Any]:
    gpus = 1.0 / per_gpu if device != "cpu" else 0.0
    cfg = EvaluatorConfig(
        backend=backend,
        num_gpus=gpus,
        num_cpus=1 if device == "cpu" else 0.5,
        memory_mb=65536 if device != "cpu" else 4096,
        timeout_s=3600,
    )
    ref = ProblemRef(str(FOLDER), {"device": device, "suite": suite})
    jobs = [EvalJob(i, code) for i, code in enumerate(candidates.values())]
    slots = per_gpu if device != "cpu" else 2
    with MemoryPeak() as peak:
        t0 = time.perf_counter()
        results = evaluate_all(ref, cfg, jobs, slots)
        wall = time.perf_counter() - t0
    return {
        "suite": suite,
        "device": device,
        "per_gpu": per_gpu,
        "candidates": len(jobs),
        "wall_s": wall,
        "per_hour": 3600 * len(jobs) / wall,
        "failed": sum(not r.ok for r in results),
        "peak_gpu_mb": peak.peak if device != "cpu" else None,
    }


def zoo_table(device: str) -> list[dict[str, Any]]:
    cfg = EvaluatorConfig(backend="ray", num_gpus=0.25, memory_mb=65536, timeout_s=3600)
    ref = ProblemRef(str(FOLDER), {"device": device, "suite": "gpu"})
    names = list(ZOO)
    jobs = [
        EvalJob(i, ZOO[n], kind)
        for kind in (JobKind.SEARCH, JobKind.VALIDATE, JobKind.HELDOUT)
        for i, n in enumerate(names)
    ]
    rows: dict[str, dict[str, Any]] = {n: {"seed": n} for n in names}
    for r in evaluate_all(ref, cfg, jobs, 4):
        rows[names[r.program_id]][str(r.kind)] = r.fitness if r.ok else None
    return sorted(rows.values(), key=lambda row: -(row.get("search") or 0))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer candidates and steps (a smoke run)")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit(
            "benchmarks/gpu.py needs a CUDA GPU; on a CPU machine the GPU path is covered by tests/test_gpu_path.py"
        )
    device = "cuda"
    name = torch.cuda.get_device_name(0)
    print(f"device: {name}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "problems.optimizer_discovery.baselines", "cuda", "gpu", "1"], check=True, cwd=ROOT
    )
    subprocess.run(
        [sys.executable, "-m", "problems.optimizer_discovery.baselines", "cuda", "cpu", "1"], check=True, cwd=ROOT
    )
    figures: dict[str, Any] = {"device": name, "baseline_seconds": time.perf_counter() - t0}
    figures["signal"] = signal_above_noise(device)
    figures["p3"] = p3_vmap_speedup(device, 30 if args.quick else 100)
    figures["p1"] = p1_overhead(device)
    zoo = dict(list(ZOO.items())[: 4 if args.quick else len(ZOO)])
    figures["p4"] = [
        throughput("cpu", "cpu", 1, zoo, "process"),
        throughput("cpu", device, 8, zoo, "ray"),
        throughput("gpu", device, 4, zoo, "ray"),
    ]
    figures["packing"] = [throughput("gpu", device, k, zoo, "ray") for k in (1, 2, 4, 8)]
    figures["zoo"] = zoo_table(device) if not args.quick else []
    print(
        "\nsignal above noise (GPU selection tasks, 2 seeds): "
        + ", ".join(f"{r['task']} {r['ratio']:.1f} SE" for r in figures["signal"])
    )
    p3 = figures["p3"]
    print(
        f"P3 vmapped sweep: {p3['vmap']:.2f} s vs sequential {p3['sequential']:.2f} s -> "
        f"{p3['speedup']:.1f}x (goal >= 8)"
    )
    p1 = figures["p1"]
    print(
        f"P1 evaluation {p1['evaluation_s']:.2f} s / in-process {p1['in_process_s']:.2f} s = {p1['ratio']:.2f} "
        "(goal <= 1.2)"
    )
    print("\nP4 and packing: suite, device, candidates per GPU, candidates/hour, peak GPU MB")
    for row in figures["p4"] + figures["packing"]:
        print(
            f"  {row['suite']:4} {row['device']:5} {row['per_gpu']:>2} {row['per_hour']:>9.0f}/h "
            f"{row['peak_gpu_mb'] if row['peak_gpu_mb'] is not None else '-':>7} (failed {row['failed']})"
        )
    cpu_rate, gpu_rate = figures["p4"][0]["per_hour"], figures["p4"][1]["per_hour"]
    print(f"P4 CPU suite: GPU {gpu_rate:.0f}/h vs 2 cores {cpu_rate:.0f}/h -> {gpu_rate / cpu_rate:.1f}x (goal >= 20)")
    if figures["zoo"]:
        print("\nzoo under the GPU suite (AdamW tuned on the GPU = 1.0):")
        for row in figures["zoo"]:
            print(
                f"  {row['seed']:10} search {row.get('search')} validate {row.get('validate')} "
                f"held-out {row.get('heldout')}"
            )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
