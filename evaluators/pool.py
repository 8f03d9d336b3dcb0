"""The caller's side of the jailed servers (evaluators.server): start one in its jail and cgroups, send it
jobs, read its replies within deadlines; and the pool of warm servers, one per evaluation thread and
problem, replaced when one dies, freezes or answers out of turn.

The server is inside the jail with the candidates, so nothing it says is trusted beyond its form: every
read is bounded in time and size, a reply must carry the sequence number of the job it answers, and a
server that breaks any of that is killed and replaced.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluators import jail
from evaluators.cgroups import JailCgroups, kill_process_group
from evaluators.limits import StageLimits
from evaluators.protocol import ProtocolError, Reader, send

GRACE_S = 5.0  # past a job's wall-clock limit, how long its server may take to report
START_TIMEOUT_S = 120.0
_BOOT = f"import sys; sys.path.insert(0, {str(jail.REPO_ROOT)!r}); from evaluators.server import serve; serve()"


class ServerDied(RuntimeError):
    """The server exited, froze, or said something out of form: it is replaced."""


@dataclass(frozen=True)
class JailSpec:
    """Everything that decides how a server is jailed: servers with the same spec are interchangeable."""

    problem_folder: str
    options_json: str
    isolation: str
    hidden: tuple[str, ...]
    memory_mb: int
    cpus: float
    max_processes: int
    disk_mb: int
    gpu: bool
    gpus: tuple[str | None, ...]  # the GPUs this process was given (a server is bound to them)

    @classmethod
    def of(
        cls, folder: str, options: dict[str, Any], isolation: str, hidden: tuple[str, ...], limits: StageLimits
    ) -> JailSpec:
        return cls(
            folder,
            json.dumps(options, sort_keys=True),
            isolation,
            hidden,
            limits.memory_mb,
            limits.cpus,
            limits.max_processes,
            limits.disk_mb,
            not limits.address_space,
            tuple(os.environ.get(k) for k in jail.GPU_VARS),
        )


@dataclass
class Reply:
    """What the server said of one job (the result still in frames: the sandbox decodes and classifies)."""

    returncode: int
    timed_out: bool
    over_limit: str | None
    result: list[bytes]
    result_error: str | None
    output: str
    seconds: float
    oom_kills: int
    cpu_seconds: float


_RUNNING: set[JailedServer] = set()  # every server of this process, warm or one-shot, until it is closed
_RUNNING_LOCK = threading.Lock()


def kill_all_servers() -> None:
    """Stop every jailed server of this process now (a second Ctrl-C): the evaluations they run end at once
    (their programs stay pending in the archive and run again on resume)."""
    with _RUNNING_LOCK:
        servers = list(_RUNNING)
    for server in servers:
        server.close()


class JailedServer:
    """One server in its jail: warm (the problem loaded once, a fork per job) or one-shot (fresh start)."""

    def __init__(self, spec: JailSpec, warm: bool) -> None:
        self.spec, self.warm = spec, warm
        self.seq = 0
        self._host_dir: Path | None = None
        self.cgroups = JailCgroups(spec.max_processes, spec.memory_mb, spec.cpus)
        if spec.isolation == "bubblewrap":
            prefix, base = jail.command(spec.problem_folder, spec.disk_mb, spec.hidden, spec.gpu), "/tmp"
            env = jail.clean_env("/tmp")
        else:  # no jail: a private host directory holds the working directories
            self._host_dir = Path(tempfile.mkdtemp(prefix="evolve-server-"))
            prefix, base = [], str(self._host_dir)
            env = {**jail.clean_env(base), "PYTHONPATH": str(jail.REPO_ROOT)}
        self._log = tempfile.TemporaryFile()  # the server's own stderr (a start-up failure's traceback)
        cmd = self.cgroups.wrap(prefix + [sys.executable, "-I", "-c", _BOOT])
        try:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                cwd=self._host_dir or "/",
                env=env,
                start_new_session=True,
            )
        except OSError:
            self._cleanup()
            raise
        with _RUNNING_LOCK:
            _RUNNING.add(self)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._to, self._from = self.proc.stdin.fileno(), Reader(self.proc.stdout.fileno())
        try:
            self._send(
                {
                    "problem_folder": spec.problem_folder,
                    "options": json.loads(spec.options_json),
                    "warm": warm,
                    "base": base,
                    "sweep": spec.isolation == "bubblewrap",
                }
            )
            reply = self._from.message(time.monotonic() + START_TIMEOUT_S, 1 << 20, 0)
        except (TimeoutError, EOFError, ProtocolError, ServerDied) as exc:
            why = self._stderr()
            self.close()
            raise ServerDied(f"the evaluation server did not start: {exc}{why}") from None
        if not reply.get("ready"):
            self.close()
            raise ServerDied(f"the evaluation server did not start: {str(reply.get('error', 'no reply'))[:2000]}")
        if warm:  # the server's own pages are charged to the cap: the candidate still gets memory_mb of its own
            self.cgroups.set_memory_limit(self.cgroups.memory_usage() + spec.memory_mb * 1024 * 1024)
        self.resident = self.cgroups.members()  # the server itself: whatever else is there after a job goes

    def _send(self, message: dict[str, Any]) -> None:
        try:
            send(self._to, message)
        except OSError:
            raise ServerDied("the evaluation server is gone") from None

    def _stderr(self) -> str:
        try:
            self._log.seek(0)
            text = self._log.read(4000).decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""
        return f" ({text.splitlines()[-1]})" if text else ""

    def run(self, job: dict[str, Any], limits: StageLimits) -> Reply:
        """Run one job; raises ServerDied (or TimeoutError: it froze) when the server must be replaced."""
        self.seq += 1
        oom, cpu = self.cgroups.oom_kills(), self.cgroups.cpu_seconds()
        start = time.monotonic()
        self._send({**job, "seq": self.seq, "limits": limits.to_json()})
        try:
            reply = self._from.message(
                start + limits.wall_s + GRACE_S,
                (1 << 16) + 4 * limits.output_chars,
                limits.result_bytes + limits.artifact_bytes + (1 << 16),
            )
        except EOFError:
            raise ServerDied("the evaluation server exited") from None
        except ProtocolError as exc:
            raise ServerDied(f"the evaluation server sent garbage: {exc}") from None
        finally:
            if self.resident:  # a daemon the job left (escaped from its session) is still in the cgroup
                self.cgroups.kill_all(keep=self.resident)
        if reply.get("seq") != self.seq:
            raise ServerDied("the evaluation server answered out of turn")
        try:
            return Reply(
                int(reply["returncode"]),
                bool(reply["timed_out"]),
                _text(reply.get("over_limit")),
                [bytes(f) for f in reply["result"]],
                _text(reply.get("result_error")),
                str(reply.get("output", "")),
                time.monotonic() - start,
                self.cgroups.oom_kills() - oom,
                self.cgroups.cpu_seconds() - cpu,
            )
        except (KeyError, TypeError, ValueError):
            raise ServerDied("the evaluation server sent a malformed reply") from None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        with _RUNNING_LOCK:
            _RUNNING.discard(self)
        if self._log.closed:
            return
        kill_process_group(self.proc.pid)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        self._cleanup()

    def _cleanup(self) -> None:
        self.cgroups.close()
        self._log.close()
        if self._host_dir is not None:
            shutil.rmtree(self._host_dir, ignore_errors=True)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:2000]


class ServerPool:
    """Warm servers, one per evaluation thread and jail spec (a server runs one job at a time)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[JailedServer] = []
        self._lock = threading.Lock()
        self.fresh_only: set[str] = set()  # problem folders whose prepare() initialised CUDA

    def get(self, spec: JailSpec) -> JailedServer:
        servers: dict[JailSpec, JailedServer] = self._local.__dict__.setdefault("servers", {})
        server = servers.get(spec)
        if server is not None and server.alive():
            return server
        if server is not None:
            self.drop(server)
        server = servers[spec] = JailedServer(spec, warm=True)
        with self._lock:
            self._all.append(server)
        return server

    def drop(self, server: JailedServer) -> None:
        """Stop a server and forget it (a replaced server must not linger)."""
        server.close()
        servers: dict[JailSpec, JailedServer] = self._local.__dict__.setdefault("servers", {})
        if servers.get(server.spec) is server:
            del servers[server.spec]
        with self._lock:
            if server in self._all:
                self._all.remove(server)

    def live(self) -> int:
        with self._lock:
            return len(self._all)

    def close_all(self) -> None:
        with self._lock:
            servers, self._all = self._all, []
        for server in servers:
            server.close()


POOL = ServerPool()
atexit.register(POOL.close_all)
