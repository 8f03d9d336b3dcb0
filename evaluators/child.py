"""Entry point of the sandbox child: limit itself, load the problem, run one stage, report.

Runs in a fresh interpreter started by :class:`evaluators.sandbox.Sandbox`. Whatever it writes is
only *artifacts*: the fitness is computed by the problem's ``score`` in the parent process.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import traceback
from pathlib import Path
from typing import Any

RESULT_FILE = "result.json"


def _apply_limits(limits: dict[str, Any]) -> None:
    mb = 1024 * 1024
    if limits.get("address_space", True):  # not for GPU candidates: a memory cgroup caps them (cgroups.py)
        resource.setrlimit(resource.RLIMIT_AS, (limits["memory_mb"] * mb, limits["memory_mb"] * mb))
    resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_seconds"], limits["cpu_seconds"] + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_mb"] * mb, limits["file_mb"] * mb))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits["max_processes"], limits["max_processes"]))
    except (ValueError, OSError):
        pass


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    return True


def _share_gpu(fraction: float | None) -> None:
    """Cap this candidate's share of its GPU (several candidates packed on one GPU)."""
    if not fraction:
        return
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_per_process_memory_fraction(float(fraction), 0)


def _out_of_gpu_memory(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "CUDA out of memory" in str(exc)


BLOB_KEY = "$blob"  # {"$blob": "blob-3.bin"}: a bytes artifact written beside the result (no base64)


def _externalise(value: Any, workdir: Path, counter: list[int]) -> Any:
    if isinstance(value, (bytes, bytearray)):
        counter[0] += 1
        name = f"blob-{counter[0]}.bin"
        (workdir / name).write_bytes(value)
        return {BLOB_KEY: name}
    if isinstance(value, dict):
        return {k: _externalise(v, workdir, counter) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_externalise(v, workdir, counter) for v in value]
    return value


def _write(workdir: Path, payload: dict[str, Any]) -> None:
    (workdir / RESULT_FILE).write_text(json.dumps(_externalise(payload, workdir, [0])))


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL us when the evaluator dies (e.g. the controller is kill -9'ed)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass


def main(workdir_arg: str) -> None:
    """Fresh-interpreter entry: read the job the sandbox left in the working directory and run it."""
    workdir = Path(workdir_arg)
    job = json.loads((workdir / "job.json").read_text())
    (workdir / "job.json").unlink()
    run_job(workdir, job, None)


def run_job(workdir: Path, job: dict[str, Any], problem: Any) -> None:
    """Limit this process, run one stage, write result.json and exit (never returns).

    ``problem`` is the already-loaded problem of a warm server's forked child, or None for a fresh
    interpreter (then it is loaded here, under the limits).
    """
    _die_with_parent()
    _apply_limits(job["limits"])
    from evolve.loader import load_problem_folder
    from evolve.problem import ContractError

    try:
        if problem is None:
            problem = load_problem_folder(Path(job["problem_folder"]), job["options"])
        _share_gpu(job["limits"].get("gpu_memory_fraction"))
        artifacts = problem.run_stage(job["code"], job["stage"], workdir)
        if not isinstance(artifacts, dict):
            raise ContractError(f"run_stage returned {type(artifacts).__name__}, expected dict")
        if not _finite(artifacts):
            _write(workdir, {"ok": False, "kind": "nan", "message": "non-finite values in the result"})
            return
        _write(workdir, {"ok": True, "artifacts": artifacts})
    except MemoryError:
        _write(workdir, {"ok": False, "kind": "memory", "message": "memory limit exceeded"})
    except RecursionError as exc:
        _write(workdir, {"ok": False, "kind": "crash", "message": f"RecursionError: {exc}"})
    except SyntaxError as exc:
        _write(workdir, {"ok": False, "kind": "syntax", "message": f"SyntaxError: {exc}"})
    except ImportError as exc:
        _write(workdir, {"ok": False, "kind": "import", "message": f"{type(exc).__name__}: {exc}"})
    except ContractError as exc:
        kind = getattr(exc, "kind", "contract")
        _write(workdir, {"ok": False, "kind": kind, "message": str(exc)})
    except FloatingPointError as exc:
        _write(workdir, {"ok": False, "kind": "nan", "message": str(exc)})
    except BaseException as exc:  # noqa: BLE001 - the candidate may raise anything, SystemExit too
        tb = traceback.format_exc(limit=5)
        sys.stderr.write(tb)
        kind = "contract" if isinstance(exc, (SystemExit, KeyboardInterrupt)) else \
            "memory" if _out_of_gpu_memory(exc) else "crash"
        _write(workdir, {"ok": False, "kind": kind, "message": f"{type(exc).__name__}: {exc}"[:2000]})
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # threads the candidate left running must not keep the process alive
