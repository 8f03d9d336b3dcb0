"""The cgroups of one jail: limits that hold for a candidate as a whole, whatever it forks.

Rlimits are per process (64 processes of 2 GB each are 128 GB) and RLIMIT_NPROC counts a whole user,
so the caps that matter are cgroups: ``pids.max`` (process count), a memory cap with no swap
(``memory.max`` + ``memory.swap.max`` on v2, ``memory.limit_in_bytes`` + ``memory.memsw.limit_in_bytes``
on v1), a CPU quota (``cpu.max`` / ``cpu.cfs_quota_us``: with one core a candidate's CPU time cannot
exceed its wall-clock time) and the CPU time used (``cpu.stat`` / ``cpuacct.usage``), which the trusted
side reads. The jail's first process joins the cgroups before anything else runs
(``sh -c 'echo $$ > .../cgroup.procs ... && exec ...'``) and everything it starts inherits them.
Works with cgroup v1 (one hierarchy per controller) and v2 (one unified hierarchy); where a controller
is not writable the jail goes without it, and :func:`available` says which are in force.
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
CONTROLLERS = ("pids", "memory", "cpu", "cpuacct")
# A file each controller's cgroups have, on v1 and on v2.
_PROBE = {
    "pids": ("pids.max",),
    "memory": ("memory.limit_in_bytes", "memory.max"),
    "cpu": ("cpu.cfs_quota_us", "cpu.max"),
    "cpuacct": ("cpuacct.usage", "cpu.stat"),
}
_PERIOD_US = 100_000


@cache
def _root(controller: str) -> Path | None:
    """A writable hierarchy with this controller (v1 first), or None."""
    candidates = [CGROUP / controller] if (CGROUP / controller).is_dir() else []
    controllers = CGROUP / "cgroup.controllers"
    v2_name = "cpu" if controller == "cpuacct" else controller  # v2 accounts CPU in the cpu controller
    if controllers.is_file() and v2_name in controllers.read_text().split():
        candidates.append(CGROUP)
    for root in candidates:
        probe = root / f"evolve-probe-{uuid.uuid4().hex[:8]}"
        try:
            probe.mkdir()
            ok = any((probe / name).exists() for name in _PROBE[controller])
            probe.rmdir()
        except OSError:
            continue
        if ok:
            _sweep(root)
            return root
    log.warning(
        "no writable %s cgroup: a candidate's %s is not capped as a whole",
        controller,
        {"pids": "process count", "memory": "memory", "cpu": "CPU share", "cpuacct": "CPU time"}[controller],
    )
    return None


def available() -> dict[str, bool]:
    """Which limits a jail gets on this machine."""
    return {c: _root(c) is not None for c in CONTROLLERS}


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


def _read_int(path: Path, key: str | None = None) -> int | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    try:
        if key is None:
            return int(text.split()[0])
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (ValueError, IndexError):
        return None
    return None


class JailCgroups:
    """The cgroups everything started through :meth:`wrap` joins: a process cap, and where asked a memory
    cap (no swap) and a CPU quota; CPU time is always accounted where a controller allows it."""

    def __init__(self, max_pids: int, memory_mb: int | None = None, cpus: float | None = None) -> None:
        self.dirs: dict[str, Path] = {}
        name = f"evolve-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        wanted = {"pids": {"pids.max": str(max_pids)}, "cpuacct": {}}
        if memory_mb:
            limit = str(memory_mb * 1024 * 1024)
            wanted["memory"] = {
                "memory.limit_in_bytes": limit,
                "memory.memsw.limit_in_bytes": limit,
                "memory.max": limit,
                "memory.swap.max": "0",
            }
        if cpus:
            quota = max(1000, int(cpus * _PERIOD_US))
            wanted["cpu"] = {
                "cpu.cfs_period_us": str(_PERIOD_US),
                "cpu.cfs_quota_us": str(quota),
                "cpu.max": f"{quota} {_PERIOD_US}",
            }
        for controller, settings in wanted.items():
            root = _root(controller)
            if root is None:
                continue
            path = root / name
            if self._make(path) and self._write(path, settings):
                self.dirs[controller] = path
        self.paths = sorted(set(self.dirs.values()))  # on v2 one directory holds every controller

    def _make(self, path: Path) -> bool:
        if path in self.dirs.values():
            return True
        try:
            path.mkdir()
            return True
        except OSError:
            return False

    def _write(self, path: Path, settings: dict[str, str]) -> bool:
        try:
            for key, value in settings.items():  # in order: v1 takes the memory limit before the memsw one
                if (path / key).exists():
                    (path / key).write_text(value)
            return True
        except OSError:
            if path not in self.dirs.values():
                self.remove_dir(path)
            return False

    @property
    def path(self) -> Path | None:  # the pids cgroup, where there is one
        return self.dirs.get("pids")

    def has(self, controller: str) -> bool:
        return controller in self.dirs

    def wrap(self, cmd: list[str]) -> list[str]:
        if not self.paths:
            return cmd
        return ["/bin/sh", "-c", _JOIN, "sh", *[str(p / "cgroup.procs") for p in self.paths], "--", *cmd]

    def memory_usage(self) -> int:
        path = self.dirs.get("memory")
        if path is None:
            return 0
        return _read_int(path / "memory.current") or _read_int(path / "memory.usage_in_bytes") or 0

    def set_memory_limit(self, limit: int) -> None:
        """Raise or lower the memory cap (a warm server's own pages are counted in: it is raised by them)."""
        path = self.dirs.get("memory")
        if path is None:
            return
        text = str(limit)
        # v1: the memory+swap limit must stay >= the memory limit, so the order depends on the direction
        v1 = ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
        current = _read_int(path / "memory.limit_in_bytes")
        keys = v1 if current is not None and limit < current else list(reversed(v1))
        self._write(path, {**{k: text for k in keys}, "memory.max": text})

    def cpu_seconds(self) -> float:
        """CPU time (user + system) every process of the jail has used so far, as the kernel counts it."""
        path = self.dirs.get("cpuacct")
        if path is None:
            return 0.0
        usage_ns = _read_int(path / "cpuacct.usage")
        if usage_ns is not None:
            return usage_ns / 1e9
        usec = _read_int(path / "cpu.stat", "usage_usec")
        return (usec or 0) / 1e6

    def oom_kills(self) -> int:
        """How many times the memory cap has killed something in this jail (0 without a cap)."""
        path = self.dirs.get("memory")
        if path is None:
            return 0
        for name in ("memory.events", "memory.oom_control"):
            value = _read_int(path / name, "oom_kill")
            if value is not None:
                return value
        return _read_int(path / "memory.failcnt") or 0  # older v1 kernels count hits of the limit only

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
        self.paths, self.dirs = [], {}

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
