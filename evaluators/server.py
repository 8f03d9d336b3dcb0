"""Inside the jail: the server that runs candidate stages one at a time, each in a forked child.

Started by :class:`evaluators.pool.JailedServer`. A *warm* server imports the problem once and lets it
warm up (``Problem.prepare``) single-threaded, so that each candidate is a fork away from running
(a parent that ran multi-threaded torch ops could deadlock its forked children); a *one-shot* server
(fresh start) runs one job whose child loads the problem itself, under its limits.

The candidate cannot reach the server: the server is non-dumpable (no ptrace, no /proc/<pid>/fd or
mem for a process without capabilities), the child closes every descriptor but its stdio and its
result pipe before any candidate code runs, and the server reads the child's output and result with
caps (a flood or a huge result stops the child). Each reply carries its job's sequence number. After
each job every other process in the jail's PID namespace (a daemon the candidate left) is killed.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from evaluators.child import RESULT_FD
from evaluators.limits import StageLimits
from evaluators.protocol import ProtocolError, Reader, count_frames, send

IN_FD, OUT_FD = 200, 201  # the protocol pipes, moved out of the way of the child's stdio
# A problem whose prepare() initialised CUDA makes the server refuse to start with this message (a
# forked child cannot use its parent's CUDA context), and the sandbox runs one-shot servers instead.
CUDA_IN_SERVER = "the problem initialised CUDA in prepare(): forked candidates could not use the GPU"
_DRAIN_S = 0.2  # after the child exits, how long output still buffered in its pipes is read


def _non_dumpable() -> None:
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0


def serve() -> None:
    """Server main loop: the hello, then one job at a time until the caller closes the pipe."""
    _non_dumpable()
    os.dup2(0, IN_FD)
    os.dup2(1, OUT_FD)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    inbox = Reader(IN_FD)
    hello = inbox.message(None, 1 << 20, 0)  # the caller is trusted: no deadline on what it sends
    problem = None
    if hello.get("warm"):
        try:
            from evolve.loader import load_problem_folder

            problem = load_problem_folder(Path(hello["problem_folder"]), hello["options"])
            problem.prepare()
        except BaseException as exc:  # noqa: BLE001 - report any start-up failure to the caller
            send(OUT_FD, {"ready": False, "error": f"{type(exc).__name__}: {exc}"[:2000]})
            return
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_initialized():
            send(OUT_FD, {"ready": False, "error": CUDA_IN_SERVER})
            return
    send(OUT_FD, {"ready": True})
    base = Path(hello["base"])
    pristine = _tree(base)
    while True:
        try:
            job = inbox.message(None, 1 << 30, 0)
        except (EOFError, ProtocolError):
            return
        reply = _run(job, problem, base)
        if hello.get("sweep"):
            _sweep()
        _restore(base, pristine)
        send(OUT_FD, reply)


def _run(job: dict[str, Any], problem: Any, base: Path) -> dict[str, Any]:
    limits = StageLimits.from_json(job["limits"])
    workdir = base / f"job-{job['seq']}"
    workdir.mkdir(mode=0o700)
    out_r, out_w = os.pipe()
    res_r, res_w = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(job, problem, workdir, out_w, res_w)  # never returns
    os.close(out_w)
    os.close(res_w)
    try:
        reply = _collect(pid, out_r, res_r, limits, start + limits.wall_s)
    finally:
        os.close(out_r)
        os.close(res_r)
        shutil.rmtree(workdir, ignore_errors=True)
    return {"seq": job["seq"], **reply}


def _child(job: dict[str, Any], problem: Any, workdir: Path, out_w: int, res_w: int) -> None:
    try:
        os.setsid()
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        os.dup2(res_w, RESULT_FD)
        os.closerange(RESULT_FD + 1, 65536)  # the protocol pipes above all: the candidate must not reach them
        os.chdir(workdir)
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        from evaluators.child import run_job

        run_job(workdir, job, problem)
    finally:
        os._exit(70)  # run_job exits itself; reaching here means the harness broke


class _Streams:
    """The child's output (kept up to a cap, counted beyond it) and its result (refused beyond its caps)."""

    def __init__(self, limits: StageLimits) -> None:
        self.limits = limits
        self.output = bytearray()
        self.output_bytes = 0
        self.result = bytearray()
        self.over: str | None = None
        # the result's JSON frame, then its bytes frames, each behind a 4-byte length
        self.result_cap = limits.result_bytes + limits.artifact_bytes + 4 * 4096

    def take_output(self, chunk: bytes) -> None:
        keep = 4 * self.limits.output_chars + 4 - len(self.output)  # utf-8: at most 4 bytes a character
        if keep > 0:
            self.output += chunk[:keep]
        self.output_bytes += len(chunk)
        if self.output_bytes > self.limits.file_mb * 1024 * 1024:
            self.over = f"output: printed more than {self.limits.file_mb} MB"

    def take_result(self, chunk: bytes) -> None:
        self.result += chunk
        if len(self.result) > self.result_cap:
            self.over = (
                f"result: more than {self.limits.result_bytes // 1024} KB of result and "
                f"{self.limits.artifact_bytes >> 20} MB of artifacts"
            )


def _collect(pid: int, out_r: int, res_r: int, limits: StageLimits, deadline: float) -> dict[str, Any]:
    streams = _Streams(limits)
    pidfd = _pidfd(pid)
    fds = {out_r: streams.take_output, res_r: streams.take_result}
    status: int | None = None
    timed_out = False
    while status is None:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        if streams.over:
            break
        watch = [*fds] + ([pidfd] if pidfd is not None else [])
        ready, _, _ = select.select(watch, [], [], min(left, 0.05) if pidfd is None else left)
        for fd in ready:
            if fd == pidfd:
                continue
            chunk = os.read(fd, 1 << 20)
            if chunk:
                fds[fd](chunk)
            else:
                del fds[fd]
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
    if status is None:  # timed out or over a cap: stop it and whatever it started in its session
        _killpg(pid)
        _, status = os.waitpid(pid, 0)
    else:
        _drain(fds, streams)
        _killpg(pid)  # grandchildren it left behind in its session
    if pidfd is not None:
        os.close(pidfd)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    frames, error = _split(bytes(streams.result), limits)
    output = bytes(streams.output).decode("utf-8", errors="replace")
    if len(output) > limits.output_chars or streams.output_bytes > len(streams.output):
        output = output[: limits.output_chars] + "\n[... output truncated]"
    return {
        "returncode": code,
        "timed_out": timed_out,
        "over_limit": streams.over,
        "result": frames,
        "result_error": error,
        "output": output,
        "output_bytes": streams.output_bytes,
    }


def _drain(fds: dict[int, Any], streams: _Streams) -> None:
    """What the child wrote just before it exited (a daemon holding the pipes open is not waited for)."""
    end = time.monotonic() + _DRAIN_S
    while fds and not streams.over and time.monotonic() < end:
        ready, _, _ = select.select(list(fds), [], [], max(0.0, end - time.monotonic()))
        if not ready:
            return
        for fd in ready:
            chunk = os.read(fd, 1 << 20)
            if chunk:
                fds[fd](chunk)
            else:
                del fds[fd]


def _split(data: bytes, limits: StageLimits) -> tuple[list[bytes], str | None]:
    """The frames of the one result message the child wrote (its JSON within the result cap)."""
    if not data:
        return [], None
    frames: list[bytes] = []
    at = 0
    try:
        while at < len(data):
            if at + 4 > len(data):
                raise ProtocolError("the result ends inside a frame")
            size = int.from_bytes(data[at : at + 4], "big")
            if at + 4 + size > len(data):
                raise ProtocolError("the result ends inside a frame")
            frames.append(data[at + 4 : at + 4 + size])
            at += 4 + size
        if len(frames[0]) > limits.result_bytes:
            raise ProtocolError(f"the result is over the {limits.result_bytes // 1024} KB limit")
        if len(frames) != 1 + count_frames(frames[0]):
            raise ProtocolError("more than one result, or a result missing its artifacts")
    except ProtocolError as exc:
        return [], str(exc)
    return frames, None


def _tree(base: Path) -> set[str]:
    """What the working area holds before any job (the directories leading to bind mounts, say)."""
    out = set()
    for folder, dirs, files in os.walk(base):
        dirs[:] = [d for d in dirs if not os.path.ismount(os.path.join(folder, d))]
        out |= {os.path.join(folder, n) for n in (*dirs, *files)}
    return out


def _restore(base: Path, pristine: set[str]) -> None:
    """Remove whatever a job left in the working area (/tmp of the jail): the next candidate starts from the
    same empty disk, and reads nothing the previous one planted."""
    for folder, dirs, files in os.walk(base, topdown=True):
        for name in files:
            path = os.path.join(folder, name)
            if path not in pristine:
                try:
                    os.unlink(path)
                except OSError:
                    pass
        keep = []
        for name in dirs:
            path = os.path.join(folder, name)
            if os.path.ismount(path):
                continue
            if os.path.islink(path) and path not in pristine:
                try:
                    os.unlink(path)
                except OSError:
                    pass
            elif path in pristine:
                keep.append(name)
            else:
                shutil.rmtree(path, ignore_errors=True)
        dirs[:] = keep


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _sweep() -> None:
    """Kill every process of this PID namespace but its init and this server: what a job left running."""
    keep = {1, os.getpid()}
    for _ in range(3):
        doomed = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in keep]
        if not doomed:
            return
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for pid in doomed:
            try:
                os.waitpid(pid, 0)  # our own children (the job's) are reaped; others are the init's
            except ChildProcessError:
                pass
        time.sleep(0.01)
