"""A jailed server's forked child: limit itself, load the problem (one-shot servers), run one stage, and
hand back its result message on :data:`evaluators.server.RESULT_FD`.

Whatever it hands back is only *artifacts*: the fitness is computed by the problem's ``score`` in the
caller's process, which the candidate never ran in.
"""

from __future__ import annotations

import math
import os
import resource
import sys
import traceback
from pathlib import Path
from typing import Any

from evaluators.limits import StageLimits
from evaluators.protocol import send

RESULT_FD = 3


def _apply_limits(limits: StageLimits) -> None:
    mb = 1024 * 1024
    if limits.address_space:  # not for GPU candidates: a memory cgroup caps them (cgroups.py)
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * mb, limits.file_mb * mb))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))
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


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL us when the server dies (e.g. the controller is kill -9'ed)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass


def _write(payload: dict[str, Any]) -> None:
    try:
        send(RESULT_FD, payload)
    except (TypeError, ValueError) as exc:  # artifacts that are not plain data
        send(RESULT_FD, {"ok": False, "kind": "contract", "message": f"the result is not plain data: {exc}"[:500]})


def run_job(workdir: Path, job: dict[str, Any], problem: Any) -> None:
    """Limit this process, run one stage, send the result and exit (never returns).

    ``problem`` is the already-loaded problem of a warm server, or None for a one-shot server (then it
    is loaded here, under the limits).
    """
    _die_with_parent()
    limits = StageLimits.from_json(job["limits"])
    _apply_limits(limits)
    from evolve.loader import load_problem_folder
    from evolve.problem import ContractError

    try:
        if problem is None:
            problem = load_problem_folder(Path(job["problem_folder"]), job["options"])
        _share_gpu(limits.gpu_memory_fraction)
        request = job.get("request")
        artifacts = problem.run_stage(job["code"], job["stage"], workdir, **({"request": request} if request else {}))
        if not isinstance(artifacts, dict):
            raise ContractError(f"run_stage returned {type(artifacts).__name__}, expected dict")
        if not _finite(artifacts):
            _write({"ok": False, "kind": "nan", "message": "non-finite values in the result"})
            return
        _write({"ok": True, "artifacts": artifacts})
    except MemoryError:
        _write({"ok": False, "kind": "memory", "message": "memory limit exceeded"})
    except RecursionError as exc:
        _write({"ok": False, "kind": "crash", "message": f"RecursionError: {exc}"})
    except SyntaxError as exc:
        _write({"ok": False, "kind": "syntax", "message": f"SyntaxError: {exc}"})
    except ImportError as exc:
        _write({"ok": False, "kind": "import", "message": f"{type(exc).__name__}: {exc}"})
    except ContractError as exc:
        kind = getattr(exc, "kind", "contract")
        _write({"ok": False, "kind": kind, "message": str(exc)})
    except FloatingPointError as exc:
        _write({"ok": False, "kind": "nan", "message": str(exc)})
    except BaseException as exc:  # noqa: BLE001 - the candidate may raise anything, SystemExit too
        tb = traceback.format_exc(limit=5)
        sys.stderr.write(tb)
        kind = (
            "contract"
            if isinstance(exc, (SystemExit, KeyboardInterrupt))
            else "memory"
            if _out_of_gpu_memory(exc)
            else "crash"
        )
        _write({"ok": False, "kind": kind, "message": f"{type(exc).__name__}: {exc}"[:2000]})
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # threads the candidate left running must not keep the process alive
