"""Sandbox: runs one candidate stage in a limited child process and classifies what happened.

The child is a fresh interpreter (``python -m evaluators.child``) started with a scrubbed
environment, its own temporary working directory (removed afterwards), its own process group
(killed as a whole on timeout) and, where Debian's bubblewrap works, no network and a read-only
file system. Resource limits (address space, CPU time, file size, processes) are applied by the
child to itself before any candidate code is loaded.
"""

from __future__ import annotations

import atexit
import glob
import json
import math
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from evaluators.cgroups import JailCgroups, kill_process_group
from evaluators.child import BLOB_KEY, RESULT_FILE
from evolve.problem import Stage
from evolve.program import FailureKind

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TIMEOUT_S = 60.0  # for a stage that declares no limit of its own


@dataclass(frozen=True)
class Limits:
    """The evaluator's limits. ``timeout_s`` caps every stage: a stage runs under the smaller of it and
    the stage's own ``timeout_s`` (``DEFAULT_TIMEOUT_S`` when neither is set). ``cpu_seconds`` likewise
    defaults to that wall-clock limit (candidates run single-threaded)."""

    timeout_s: float | None = None
    memory_mb: int = 2048
    cpu_seconds: int | None = None
    file_mb: int = 64
    max_processes: int = 64
    max_output_chars: int = 4000
    # Candidates given a GPU: CUDA reserves a huge address space, so host memory is capped by a memory
    # cgroup instead of RLIMIT_AS, and GPU memory by torch's per-process fraction (packing several
    # candidates on one GPU: a candidate that overruns its share fails as `memory`, not its neighbours).
    gpu: bool = False
    gpu_memory_fraction: float | None = None

    def wall_seconds(self, stage: Stage) -> float:
        own = [t for t in (self.timeout_s, stage.timeout_s) if t is not None]
        return min(own) if own else DEFAULT_TIMEOUT_S

    def for_child(self, stage: Stage) -> dict[str, Any]:
        """The numbers a sandbox child applies to itself for this stage."""
        wall = self.wall_seconds(stage)
        cpu = self.cpu_seconds if self.cpu_seconds is not None else int(math.ceil(wall)) + 5
        return {"memory_mb": self.memory_mb, "cpu_seconds": cpu, "file_mb": self.file_mb,
                "max_processes": self.max_processes, "address_space": not self.gpu,
                "gpu_memory_fraction": self.gpu_memory_fraction}


@dataclass
class StageRun:
    """What came back from one stage: artifacts on success, a classified failure otherwise."""

    artifacts: dict[str, Any] | None
    failure: FailureKind | None = None
    message: str = ""
    output: str = ""
    seconds: float = 0.0


@lru_cache(maxsize=1)
def bubblewrap_available() -> bool:
    """True when bwrap exists and can create the namespaces we ask for on this kernel."""
    bwrap = shutil.which("bwrap")
    if not bwrap:
        return False
    try:
        probe = subprocess.run(_bwrap_prefix(Path("/tmp")) + ["/bin/true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def gpu_devices() -> list[str]:
    """NVIDIA device nodes of this machine: a jail's minimal /dev lacks them."""
    return sorted(glob.glob("/dev/nvidia*")) + sorted(glob.glob("/dev/dri/renderD*"))


def _bwrap_prefix(workdir: Path, problem_folder: str | None = None) -> list[str]:
    cmd = ["bwrap", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
           "--cap-drop", "ALL",
           "--new-session", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for dev in gpu_devices():  # so that a candidate given a GPU (CUDA_VISIBLE_DEVICES) can open it
        cmd += ["--dev-bind", dev, dev]
    # /tmp is hidden; bind back (read-only) what the interpreter, this package and the problem
    # need if they live there, and every directory this process imports from (a venv's .pth files
    # may point anywhere, e.g. at another venv's site-packages).
    keep_paths = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), REPO_ROOT}
    keep_paths |= {Path(p).resolve() for p in sys.path if p and Path(p).is_dir()}
    if problem_folder:
        keep_paths.add(Path(problem_folder).resolve())
    for keep in sorted(keep_paths):
        if keep.is_relative_to("/tmp") and keep != Path("/tmp"):  # never all of /tmp: other jobs live there
            cmd += ["--ro-bind", str(keep), str(keep)]
    if str(workdir) != "/tmp":
        cmd += ["--bind", str(workdir), str(workdir)]
    return cmd + ["--chdir", str(workdir)]


# The only variables a candidate inherits: which GPUs it was given (Ray sets them per task).
GPU_VARS = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES")


def _clean_env(workdir: Path) -> dict[str, str]:
    """The whole environment of a candidate: nothing inherited from the controller but its GPUs."""
    return {**{k: os.environ[k] for k in GPU_VARS if k in os.environ},
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }


class Sandbox:
    """Runs candidate stages; ``warm`` forks them from a per-thread warm server (see evaluators.warm)."""

    def __init__(self, limits: Limits, isolate: bool = True, warm: bool = False) -> None:
        self.limits = limits
        self.isolate = isolate and bubblewrap_available()
        self.warm = warm

    def run(self, problem_folder: str, options: dict[str, Any], code: str, stage: Stage) -> StageRun:
        timeout = self.limits.wall_seconds(stage)
        limits = self.limits.for_child(stage)
        if self.warm and problem_folder not in _FRESH_ONLY:
            return self._run_warm(problem_folder, options, code, stage.name, timeout, limits)
        workdir = Path(tempfile.mkdtemp(prefix="evolve-cand-"))
        start = time.monotonic()
        try:
            job = {"problem_folder": problem_folder, "options": options, "code": code, "stage": stage.name,
                   "limits": limits}
            (workdir / "job.json").write_text(json.dumps(job))
            pids = JailCgroups(self.limits.max_processes, self.limits.memory_mb if self.limits.gpu else None)
            cmd = pids.wrap(self._wrap(workdir, problem_folder) + [sys.executable, "-I", "-c", _BOOT, str(workdir)])
            with open(workdir / "output.txt", "wb") as out:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        cwd=workdir, env=_clean_env(workdir), start_new_session=True)
                timed_out = False
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
                finally:
                    kill_process_group(proc.pid)
                    _reap(proc)
                    oom = pids.oom_kills() > 0
                    pids.close()
            if oom and not timed_out:
                return self._memory_failure(workdir, time.monotonic() - start)
            return self._outcome(workdir, proc.returncode, timed_out, timeout, time.monotonic() - start)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _memory_failure(self, workdir: Path, seconds: float) -> StageRun:
        output = _read_head(workdir / "output.txt", self.limits.max_output_chars)
        return StageRun(None, FailureKind.MEMORY, "memory limit exceeded (cgroup)", output, seconds)

    def _wrap(self, workdir: Path, problem_folder: str | None = None) -> list[str]:
        if not self.isolate:
            return []
        return _bwrap_prefix(workdir, problem_folder) + ["--clearenv"] + \
            [a for k, v in _clean_env(workdir).items() for a in ("--setenv", k, v)]

    def _outcome(self, workdir: Path, returncode: int, timed_out: bool, timeout: float, seconds: float) -> StageRun:
        output = _read_head(workdir / "output.txt", self.limits.max_output_chars)
        if timed_out:
            return StageRun(None, FailureKind.TIMEOUT, f"wall-clock limit of {timeout:g}s exceeded", output, seconds)
        return _classify(returncode, workdir / RESULT_FILE, output, seconds)

    def _run_warm(self, problem_folder: str, options: dict[str, Any], code: str, stage: str,
                  timeout: float, limits: dict[str, Any]) -> StageRun:
        from evaluators.warm import CUDA_IN_SERVER, ServerDied, WarmServer, new_base_dir

        # A server is bound to the GPUs it was started with: a task given other GPUs gets its own.
        gpus = tuple(os.environ.get(k) for k in GPU_VARS)
        key = (problem_folder, json.dumps(options, sort_keys=True), self.isolate, gpus,
               self.limits.gpu and self.limits.memory_mb, self.limits.max_processes)  # the jail's caps
        servers: dict[Any, WarmServer] = _THREAD.__dict__.setdefault("servers", {})
        server = servers.get(key)
        if server is None or not server.alive():
            if server is not None:
                _close_server(server)
            base = new_base_dir()
            try:
                server = servers[key] = WarmServer(problem_folder, options, self._wrap(base, problem_folder),
                                                   _clean_env(base), base, max_pids=self.limits.max_processes,
                                                   memory_mb=self.limits.memory_mb if self.limits.gpu else None)
                _ALL_SERVERS.append(server)
            except (ServerDied, TimeoutError) as exc:
                servers.pop(key, None)
                if CUDA_IN_SERVER in str(exc):
                    _FRESH_ONLY.add(problem_folder)
                    print(f"evolve: {problem_folder}: {CUDA_IN_SERVER}; running a fresh interpreter per "
                          "candidate stage instead", file=sys.stderr)
                    return self.run(problem_folder, options, code, Stage(stage, timeout_s=timeout))
                return StageRun(None, FailureKind.CRASH, f"evaluation server: {exc}", "", 0.0)
        workdir = Path(tempfile.mkdtemp(prefix="job-", dir=server.base))
        start = time.monotonic()
        kills = server.pids.oom_kills()
        resident = server.pids.members()  # the server's own processes; anything new after the job goes
        try:
            try:
                returncode, timed_out = server.run(workdir, code, stage, limits, timeout)
                if resident:
                    server.pids.kill_all(keep=resident)
            except (ServerDied, TimeoutError) as exc:
                # The candidate took its server down (or froze it): replace the server next time.
                _close_server(server)
                servers.pop(key, None)
                kind = FailureKind.TIMEOUT if isinstance(exc, TimeoutError) else FailureKind.CRASH
                return StageRun(None, kind, f"evaluation server: {exc}", "", time.monotonic() - start)
            if server.pids.oom_kills() > kills and not timed_out:
                return self._memory_failure(workdir, time.monotonic() - start)
            return self._outcome(workdir, returncode, timed_out, timeout, time.monotonic() - start)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


_THREAD = threading.local()
_ALL_SERVERS: list[Any] = []
_FRESH_ONLY: set[str] = set()  # problems whose warm server cannot fork (CUDA initialised in prepare)


def _close_server(server: Any) -> None:
    """Stop a server and forget it (a replaced server must not linger in the list)."""
    server.close()
    if server in _ALL_SERVERS:
        _ALL_SERVERS.remove(server)


def live_warm_servers() -> int:
    return len(_ALL_SERVERS)


@atexit.register
def close_warm_servers() -> None:
    """Stop every warm server this process started (they also exit when their stdin closes)."""
    while _ALL_SERVERS:
        _ALL_SERVERS.pop().close()


# The child's bootstrap: put the repo on sys.path (isolated mode ignores PYTHONPATH), then hand over.
_BOOT = f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r}); from evaluators.child import main; main(sys.argv[1])"


def _reap(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _read_regular(path: Path, limit: int, whole: bool = True) -> bytes | None:
    """A file a candidate left, read by the trusted side: never through a symlink, only a regular file
    (a FIFO would block us), and at most ``limit`` bytes (``whole``: a bigger file is refused)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or (whole and info.st_size > limit):
            return None
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
        return None if whole and len(data) > limit else data
    finally:
        os.close(fd)


def _read_head(path: Path, limit: int) -> str:
    data = _read_regular(path, limit + 1, whole=False) or b""
    text = data[:limit].decode("utf-8", errors="replace")
    return text + ("\n[... output truncated]" if len(data) > limit else "")


def _internalise(value: Any, workdir: Path, budget: list[int]) -> Any:
    """Read back the bytes artifacts the child wrote beside its result (plain file names only, regular
    files only, within a byte budget for the whole result: repeated references count each time)."""
    if isinstance(value, dict):
        name = value.get(BLOB_KEY)
        if isinstance(name, str) and len(value) == 1:
            if "/" in name or name.startswith("."):
                raise ValueError(f"bad blob reference {name!r}")
            data = _read_regular(workdir / name, budget[0])
            if data is None:
                raise ValueError(f"blob {name!r} is missing, not a regular file, or over the size limit")
            budget[0] -= len(data)
            return data
        return {k: _internalise(v, workdir, budget) for k, v in value.items()}
    if isinstance(value, list):
        return [_internalise(v, workdir, budget) for v in value]
    return value


MAX_RESULT_BYTES = 512 * 1024 * 1024  # everything one stage may hand back (result.json and its blobs)


def _classify(returncode: int, result_path: Path, output: str, seconds: float,
              max_bytes: int = MAX_RESULT_BYTES) -> StageRun:
    result: dict[str, Any] | None = None
    try:
        raw = _read_regular(result_path, max_bytes)
        if raw is not None:
            result = _internalise(json.loads(raw), result_path.parent, [max_bytes - len(raw)])
    except (OSError, ValueError, RecursionError):
        result = None
    if returncode < 0 or returncode > 128:
        sig = -returncode if returncode < 0 else returncode - 128
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        if sig == signal.SIGXCPU:
            return StageRun(None, FailureKind.TIMEOUT, "CPU-time limit exceeded", output, seconds)
        return StageRun(None, FailureKind.CRASH, f"killed by signal {name}", output, seconds)
    if isinstance(result, dict) and result.get("ok") is True and returncode == 0:
        artifacts = result.get("artifacts")
        if isinstance(artifacts, dict):
            return StageRun(artifacts, None, "", output, seconds)
    if isinstance(result, dict) and result.get("ok") is False:
        kind = FailureKind.parse(result.get("kind", "crash"))
        return StageRun(None, kind, str(result.get("message", ""))[:2000], output, seconds)
    if returncode == 0:
        return StageRun(None, FailureKind.CONTRACT, "the program exited without returning a result", output, seconds)
    return StageRun(None, FailureKind.CRASH, f"exit code {returncode}", output, seconds)
