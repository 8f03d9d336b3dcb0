"""A pids cgroup per jail: the one limit that contains a fork bomb when candidates run as root.

RLIMIT_NPROC counts every process of the user and is ignored for root, so it cannot cap a
candidate's process tree. A cgroup with ``pids.max`` can: the jail's first process joins it
before anything else runs (``sh -c 'echo $$ > cgroup.procs && exec ...'``) and every process it
starts inherits the cap. Works with cgroup v1 (``/sys/fs/cgroup/pids``) and v2 (a writable
``/sys/fs/cgroup`` whose controllers include ``pids``). Where neither is writable, candidates run
without it and the sandbox says so once.
"""

from __future__ import annotations

import logging
import os
import uuid
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _root() -> Path | None:
    v1 = Path("/sys/fs/cgroup/pids")
    v2 = Path("/sys/fs/cgroup")
    candidates = [v1] if v1.is_dir() else []
    controllers = v2 / "cgroup.controllers"
    if controllers.is_file() and "pids" in controllers.read_text().split():
        candidates.append(v2)
    for root in candidates:
        probe = root / f"evolve-probe-{uuid.uuid4().hex[:8]}"
        try:
            probe.mkdir()
            ok = (probe / "pids.max").exists()
            probe.rmdir()
        except OSError:
            continue
        if ok:
            _sweep(root)
            return root
    log.warning("no writable pids cgroup: a candidate's process count is not capped (fork bombs are "
                "stopped only by the wall-clock kill)")
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


class PidsCgroup:
    """One cgroup capping the number of processes of everything started through :meth:`wrap`."""

    def __init__(self, max_pids: int) -> None:
        root = _root()
        self.path: Path | None = None
        if root is not None:
            path = root / f"evolve-{os.getpid()}-{uuid.uuid4().hex[:12]}"
            try:
                path.mkdir()
                (path / "pids.max").write_text(str(max_pids))
                self.path = path
            except OSError:
                self.remove_dir(path)

    def wrap(self, cmd: list[str]) -> list[str]:
        if self.path is None:
            return cmd
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.path / "cgroup.procs"), *cmd]

    def kill_all(self) -> None:
        """SIGKILL every process still in the cgroup (a candidate that escaped its process group)."""
        if self.path is None:
            return
        try:
            pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return
        for pid in pids:
            try:
                os.kill(pid, 9)
            except OSError:
                pass

    def close(self) -> None:
        if self.path is not None:
            self.kill_all()
            self.remove_dir(self.path)
            self.path = None

    @staticmethod
    def remove_dir(path: Path) -> None:
        for _ in range(50):  # processes just killed may take a moment to leave
            try:
                path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                import time

                time.sleep(0.02)
