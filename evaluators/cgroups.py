"""The cgroups of one jail: a process-count cap for every candidate, and a memory cap for candidates
given a GPU.

RLIMIT_NPROC counts every process of the user and is ignored for root, so it cannot cap a candidate's
process tree; a cgroup with ``pids.max`` can. RLIMIT_AS cannot limit a CUDA process (CUDA reserves
a huge virtual address space at start), so a candidate with a GPU gets a memory cgroup
(``memory.limit_in_bytes`` on v1, ``memory.max`` on v2) instead; its GPU memory is capped by
torch's per-process fraction (evaluators.child). The jail's first process joins the cgroups before
anything else runs (``sh -c 'echo $$ > .../cgroup.procs ... && exec ...'``) and every process it
starts inherits them. Works with cgroup v1 (one hierarchy per controller) and v2 (one unified
hierarchy). Where none is writable, candidates run without it and the sandbox says so once.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)
CGROUP = Path("/sys/fs/cgroup")
_JOIN = 'for f; do [ "$f" = -- ] && break; echo $$ > "$f" || exit 97; shift; done; shift; exec "$@"'


@cache
def _root(controller: str) -> Path | None:
    """A writable hierarchy with this controller (v1 first), or None."""
    candidates = [CGROUP / controller] if (CGROUP / controller).is_dir() else []
    controllers = CGROUP / "cgroup.controllers"
    if controllers.is_file() and controller in controllers.read_text().split():
        candidates.append(CGROUP)
    probe_file = {"pids": "pids.max", "memory": "memory.limit_in_bytes"}[controller]
    for root in candidates:
        probe = root / f"evolve-probe-{uuid.uuid4().hex[:8]}"
        try:
            probe.mkdir()
            ok = (probe / probe_file).exists() or (probe / "memory.max").exists()
            probe.rmdir()
        except OSError:
            continue
        if ok:
            _sweep(root)
            return root
    log.warning("no writable %s cgroup: %s", controller, "a candidate's process count is not capped (fork bombs "
                "are stopped only by the wall-clock kill)" if controller == "pids" else
                "a GPU candidate's host memory is not capped")
    return None


def _sweep(root: Path) -> None:
    """Remove empty cgroups left by evaluators that were killed (kill -9 skips their clean-up)."""
    for path in root.glob("evolve-*-*"):
        try:
            creator = int(path.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if creator != os.getpid() and not Path(f"/proc/{creator}").exists():
            try:
                if not (path / "cgroup.procs").read_text().strip():
                    path.rmdir()
            except OSError:
                pass


def kill_process_group(pid: int) -> None:
    """SIGKILL the process group led by ``pid`` (a candidate and whatever it started)."""
    try:
        os.killpg(pid, 9)
    except (ProcessLookupError, PermissionError):
        pass


class JailCgroups:
    """The cgroups everything started through :meth:`wrap` joins: pids always, memory when asked."""

    def __init__(self, max_pids: int, memory_mb: int | None = None) -> None:
        self.paths: list[Path] = []
        self.memory: Path | None = None
        name = f"evolve-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        pids_root = _root("pids")
        if pids_root is not None:
            self._make(pids_root / name, {"pids.max": str(max_pids)})
        mem_root = _root("memory") if memory_mb else None
        if mem_root is not None and memory_mb:
            limit = str(memory_mb * 1024 * 1024)
            path = mem_root / name
            if path in self.paths:  # v2: one unified cgroup holds both limits
                self._write(path, {"memory.max": limit, "memory.swap.max": "0"})
                self.memory = path
            elif self._make(path, {"memory.limit_in_bytes": limit} if mem_root != CGROUP else
                            {"memory.max": limit, "memory.swap.max": "0"}):
                self.memory = path

    def _make(self, path: Path, settings: dict[str, str]) -> bool:
        try:
            path.mkdir()
        except OSError:
            return False
        if self._write(path, settings):
            self.paths.append(path)
            return True
        self.remove_dir(path)
        return False

    @staticmethod
    def _write(path: Path, settings: dict[str, str]) -> bool:
        try:
            for key, value in settings.items():
                if (path / key).exists():
                    (path / key).write_text(value)
            return True
        except OSError:
            return False

    @property
    def path(self) -> Path | None:  # the pids cgroup, where there is one
        return self.paths[0] if self.paths else None

    def wrap(self, cmd: list[str]) -> list[str]:
        if not self.paths:
            return cmd
        return ["/bin/sh", "-c", _JOIN, "sh", *[str(p / "cgroup.procs") for p in self.paths], "--", *cmd]

    def oom_kills(self) -> int:
        """How many times the memory cap has killed something in this jail (0 without a cap)."""
        if self.memory is None:
            return 0
        for name in ("memory.events", "memory.oom_control"):
            try:
                for line in (self.memory / name).read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
            except (OSError, ValueError):
                continue
        try:  # older v1 kernels count hits of the limit only
            return int((self.memory / "memory.failcnt").read_text())
        except (OSError, ValueError):
            return 0

    def members(self) -> set[int]:
        """The processes in the jail now (host pids)."""
        out: set[int] = set()
        for path in self.paths:
            try:
                out |= {int(p) for p in (path / "cgroup.procs").read_text().split()}
            except OSError:
                continue
        return out

    def kill_all(self, keep: set[int] | None = None) -> None:
        """SIGKILL every process in the cgroups but ``keep`` (a candidate's daemon that escaped its
        process group with setsid is still in the cgroup)."""
        doomed = self.members() - (keep or set())
        for pid in doomed:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        # SIGKILL is not instant on a loaded machine: the job is over only once they have left the cgroup
        deadline = time.monotonic() + 2.0
        while doomed and time.monotonic() < deadline:
            doomed &= self.members()
            if doomed:
                time.sleep(0.005)

    def close(self) -> None:
        self.kill_all()
        for path in self.paths:
            self.remove_dir(path)
        self.paths = []

    @staticmethod
    def remove_dir(path: Path) -> None:
        for _ in range(50):  # processes just killed may take a moment to leave
            try:
                path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)
