"""Warm evaluation servers: one process per evaluation slot forks a fresh child per candidate.

A fresh interpreter per candidate stage pays for importing torch and building the problem's data
(1-2 s) every time. A :class:`WarmServer` is started once per slot — inside the same bubblewrap
jail and clean environment as a plain sandbox child — imports the problem, lets it warm up
(``Problem.prepare``) single-threaded, and then forks one child per job. The child closes every
descriptor it inherited, starts its own session, applies the resource limits to itself and runs
the stage exactly as a fresh interpreter would (see :mod:`evaluators.child`). The server stays
single-threaded: a parent that ran multi-threaded torch ops can deadlock its forked children.

The server is inside the jail with the candidates, so it is not trusted either: the caller keeps
its own deadline, and a server that dies or stops answering is killed and replaced. Results are
read from the job's directory and scored outside, as for a fresh child.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from evaluators.cgroups import JailCgroups, kill_process_group

_PROTOCOL_FD_IN, _PROTOCOL_FD_OUT = 200, 201


# GPU path: the server never touches CUDA, so each forked child initialises its own context (a
# child of a process that initialised CUDA cannot). A problem whose prepare() initialised CUDA
# makes the server refuse to start with this message, and the sandbox runs fresh interpreters.
CUDA_IN_SERVER = "the problem initialised CUDA in prepare(): forked candidates could not use the GPU"


class ServerDied(RuntimeError):
    pass


class WarmServer:
    """The controller-side handle of one warm server (one evaluation at a time)."""

    def __init__(self, problem_folder: str, options: dict[str, Any], wrap: list[str] | None,
                 env: dict[str, str], base: Path, max_pids: int = 64, start_timeout_s: float = 120.0,
                 memory_mb: int | None = None) -> None:
        self.base = base
        # The server and every child it forks share the caps (memory: GPU jails only, see cgroups.py).
        self.pids = JailCgroups(max_pids, memory_mb)
        boot = (f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r}); "
                "from evaluators.warm import serve; serve()")
        cmd = self.pids.wrap((wrap or []) + [sys.executable, "-I", "-c", boot])
        self._log = open(base / "server.log", "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     cwd=base, env=env, start_new_session=True)
        self._send({"problem_folder": problem_folder, "options": options})
        reply = self._receive(start_timeout_s)
        if not reply.get("ready"):
            self.close()
            raise ServerDied(f"warm server failed to start: {reply.get('error', 'no reply')}")

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise ServerDied("warm server is gone") from None

    def _receive(self, timeout_s: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        if not ready:
            raise TimeoutError("warm server did not answer in time")
        line = self.proc.stdout.readline()
        if not line:
            raise ServerDied("warm server exited")
        try:
            reply: dict[str, Any] = json.loads(line)
            return reply
        except ValueError:
            raise ServerDied("warm server sent garbage") from None

    def run(self, workdir: Path, code: str, stage: str, limits: dict[str, Any], timeout_s: float) -> tuple[int, bool]:
        """Run one stage in a forked child. Returns (exit status as Popen reports it, timed out?)."""
        self._send({"workdir": str(workdir), "code": code, "stage": stage, "limits": limits, "timeout_s": timeout_s})
        reply = self._receive(timeout_s + 30.0)
        return int(reply["returncode"]), bool(reply["timed_out"])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self._log.closed:
            return
        kill_process_group(self.proc.pid)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.pids.close()
        self._log.close()
        shutil.rmtree(self.base, ignore_errors=True)


def new_base_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="evolve-warm-"))


# -- inside the jail ----------------------------------------------------------------------------
def serve() -> None:
    """Server main loop: load the problem once, then fork a child per job."""
    os.dup2(0, _PROTOCOL_FD_IN)
    os.dup2(1, _PROTOCOL_FD_OUT)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    inbox = os.fdopen(_PROTOCOL_FD_IN, "rb")
    outbox = os.fdopen(_PROTOCOL_FD_OUT, "wb")

    def reply(message: dict[str, Any]) -> None:
        outbox.write((json.dumps(message) + "\n").encode())
        outbox.flush()

    hello = json.loads(inbox.readline())
    try:
        from evolve.loader import load_problem_folder

        problem = load_problem_folder(Path(hello["problem_folder"]), hello["options"])
        problem.prepare()
    except BaseException as exc:  # noqa: BLE001 - report any start-up failure to the caller
        reply({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        # A forked child cannot use the CUDA context of its parent: candidates must start fresh.
        reply({"ready": False, "error": CUDA_IN_SERVER})
        return
    reply({"ready": True})
    for line in inbox:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(job, problem)  # never returns
        reply(_wait(pid, float(job["timeout_s"])))


def _wait(pid: int, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    delay = 0.001
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            kill_process_group(pid)  # grandchildren it left behind
            return {"returncode": _returncode(status), "timed_out": False}
        if time.monotonic() > deadline:
            kill_process_group(pid)
            _, status = os.waitpid(pid, 0)
            return {"returncode": _returncode(status), "timed_out": True}
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def _returncode(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _child(job: dict[str, Any], problem: Any) -> None:
    try:
        os.setsid()
        os.closerange(3, 65536)  # the protocol pipes above all: the candidate must not reach them
        workdir = Path(job["workdir"])
        os.chdir(workdir)
        out = os.open(workdir / "output.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        from evaluators.child import run_job

        run_job(workdir, job, problem)
    finally:
        os._exit(70)  # run_job exits itself; reaching here means the harness broke
