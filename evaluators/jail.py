"""The jail a candidate runs in: bubblewrap with an allow-list of the file system, or nothing at all when
the user opted out (``evaluator.isolation: none``). It fails closed: asked for bubblewrap where it cannot
run, a run stops with the opt-out named, and a failed probe is never remembered as the answer.

What a jailed candidate sees: read-only, the interpreter's prefix and import directories, /usr and
/lib*, the dynamic loader's files in /etc, evolve's own packages and the problem folder; a fresh /proc
and minimal /dev of its own; a sized tmpfs at /tmp (its working directory is there). Nothing else of
the host exists in it: no home directory, no /run or /var (so no Unix socket of the host, no agent, no
bus), no run directory, archive or evaluation cache (masked with an empty tmpfs where they lie under a
bound directory). It has no network (abstract Unix sockets included), its own PID, IPC, UTS and user
namespaces (uid 65534), no capabilities, and dies with its parent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluators import cgroups
from evolve.errors import UserError

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("evolve", "evaluators", "islands", "problems")  # what a jailed child imports of this project
JAIL_UID = 65534  # nobody
# The dynamic loader's files and the few others the interpreter reads.
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
NVIDIA_CONTROL = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")
# The only variables a candidate inherits: which GPUs it was given (Ray sets them per task).
GPU_VARS = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES")


class IsolationUnavailable(UserError):
    """The isolation the config asks for cannot be had here; the message names the opt-out."""


@dataclass(frozen=True)
class Probe:
    ok: bool
    user_namespace: bool = False
    nested: bool = False  # a jail can start a jail of its own (a peer-layout candidate apart from its evaluator)
    reason: str = ""


_LOCK = threading.Lock()
_PROBED: Probe | None = None  # only a success is remembered: a probe that failed (or timed out) is re-run


def probe(attempts: int = 3) -> Probe:
    """Can bubblewrap build the jail here (with a user namespace, or at least without one)?"""
    global _PROBED
    with _LOCK:
        if _PROBED is not None:
            return _PROBED
        bwrap = shutil.which("bwrap")
        if not bwrap:
            return Probe(False, reason="the bwrap program is not installed (Debian: apt-get install bubblewrap)")
        reason = ""
        for _ in range(attempts):
            for userns in (True, False):
                cmd = _namespaces(userns) + _system_binds() + ["--proc", "/proc", "--dev", "/dev", "/bin/true"]
                try:
                    done = subprocess.run([bwrap, *cmd], capture_output=True, timeout=30)
                except (OSError, subprocess.TimeoutExpired) as exc:
                    reason = f"bwrap did not start: {exc}"
                    continue
                if done.returncode == 0:
                    _PROBED = Probe(True, user_namespace=userns, nested=_nested_works(bwrap, userns))
                    return _PROBED
                reason = (
                    "bwrap cannot create its namespaces here: " + done.stderr.decode(errors="replace").strip()[:300]
                )
        return Probe(False, reason=reason)


def _nested_works(bwrap: str, userns: bool) -> bool:
    outer = _namespaces(userns) + _system_binds() + ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    inner = _nested_namespaces() + _system_binds() + ["--dev", "/dev", "--tmpfs", "/tmp", "/bin/true"]
    try:
        return subprocess.run([bwrap, *outer, "bwrap", *inner], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def require(mode: str) -> None:
    """Raise :class:`IsolationUnavailable` when ``mode`` is 'bubblewrap' and it cannot run here."""
    if mode != "bubblewrap":
        return
    result = probe()
    if not result.ok:
        raise IsolationUnavailable(
            f"evaluator.isolation is 'bubblewrap' but {result.reason}. Install bubblewrap (scripts/setup.sh does, as "
            "root on Debian), or set evaluator.isolation: none to run candidates without isolation (they then see "
            "the host: its files, its network, the controller's processes)"
        )


def describe(mode: str) -> dict[str, Any]:
    """The isolation in force, as stored with a run and shown by `status`, the report and the web view."""
    limits = cgroups.available()
    caps = [c for c in ("pids", "memory", "cpu") if limits[c]]
    if mode != "bubblewrap":
        return {
            "mode": "none",
            "summary": "no isolation: candidates see the host's files, network and processes"
            + (f"; cgroups: {', '.join(caps)}" if caps else "; no cgroups"),
            "cgroups": caps,
        }
    result = probe()
    userns = result.user_namespace
    return {
        "mode": "bubblewrap",
        "user_namespace": userns,
        "nested": result.nested,
        "cgroups": caps,
        "summary": "bubblewrap: no network, allow-list file system, own PID/IPC/UTS"
        + ("/user" if userns else "")
        + " namespaces"
        + (f"; cgroups: {', '.join(caps)}" if caps else "; no cgroups (limits per process only)"),
    }


def _namespaces(userns: bool) -> list[str]:
    cmd = [
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
    ]
    if userns:
        cmd += ["--unshare-user", "--uid", str(JAIL_UID), "--gid", str(JAIL_UID)]
    return cmd


def _nested_namespaces() -> list[str]:
    """A jail inside a jail (the kernel refuses a second /proc there: the inner one has none, so it cannot
    see, signal or trace anything of the outer jail)."""
    return [
        "--unshare-user",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-net",
        "--unshare-uts",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
    ]


def _system_binds() -> list[str]:
    cmd: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            cmd += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            cmd += ["--ro-bind", path, path]
    for name in ETC_FILES:
        cmd += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return cmd


def import_dirs() -> list[Path]:
    """What the interpreter needs to start and import this project's dependencies (a venv's .pth files may
    point anywhere, e.g. at another venv's site-packages). Never a directory that holds more than code: the
    project directory itself (only its packages: a run directory may live in it), /tmp, a home directory."""
    dirs = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent.parent}
    dirs |= {Path(p) for p in sys.path if p and Path(p).is_dir()}
    broad = [
        Path("/"),
        Path("/tmp"),
        Path(tempfile.gettempdir()).resolve(),
        Path("/root"),
        Path("/home"),
        Path.home().resolve(),
        REPO_ROOT,
    ]
    out = set()
    for d in dirs:
        d = d.resolve()
        if any(b.is_relative_to(d) for b in broad) or d.parent == Path("/home"):
            continue  # an entry like the checkout (pytest puts it on sys.path), /tmp or a home would bind too much
        out.add(d)
    out |= {REPO_ROOT / p for p in PACKAGES if (REPO_ROOT / p).is_dir()}
    return sorted(out)


def _outermost(paths: list[Path]) -> list[Path]:
    """The paths without those inside another one (binding both would only repeat the inner one)."""
    ordered = sorted(set(paths))
    return [p for p in ordered if not any(p != q and p.is_relative_to(q) for q in ordered)]


def gpu_devices() -> list[str]:
    """The GPU device nodes a jail binds: the control nodes and the devices this task was given."""
    import glob

    all_gpus = sorted(glob.glob("/dev/nvidia[0-9]*"))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None or not all(v.strip().isdigit() for v in visible.split(",") if v.strip()):
        chosen = all_gpus  # unset, or UUIDs/MIG names: bind them all (the driver maps names itself)
    else:
        chosen = [f"/dev/nvidia{int(v)}" for v in visible.split(",") if v.strip()]
    return [d for d in (*NVIDIA_CONTROL, *chosen) if os.path.exists(d)]


def clean_env(home: str) -> dict[str, str]:
    """The whole environment of a candidate: nothing inherited from the controller but its GPUs."""
    return {
        **{k: os.environ[k] for k in GPU_VARS if k in os.environ},
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "USER": "evolve",
        "LOGNAME": "evolve",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }


def command(problem_folder: str | None, disk_mb: int, hidden: tuple[str, ...] = (), gpu: bool = False) -> list[str]:
    """The bubblewrap command line that runs what follows it in the jail (cwd /tmp, a clean environment)."""
    result = probe()
    if not result.ok:
        raise IsolationUnavailable(f"bubblewrap cannot run here: {result.reason}")
    # /tmp first: a problem folder (or a venv) under /tmp is bound on top of the jail's own tmpfs
    cmd = [
        "bwrap",
        *_namespaces(result.user_namespace),
        *_system_binds(),
        "--size",
        str(disk_mb * 1024 * 1024),
        "--tmpfs",
        "/tmp",
    ]
    bound = _outermost([*import_dirs(), *([Path(problem_folder).resolve()] if problem_folder else [])])
    for path in bound:
        cmd += ["--ro-bind", str(path), str(path)]
    for secret in hidden:  # a run directory or cache inside a bound folder: an empty tmpfs over it
        target = Path(secret).resolve()
        if target.exists() and any(target.is_relative_to(b) for b in bound):
            cmd += ["--tmpfs", str(target)]
    cmd += ["--proc", "/proc", "--dev", "/dev"]
    if gpu:  # CUDA reads the driver's state under /sys; only the task's own GPUs are bound
        cmd += ["--ro-bind", "/sys", "/sys"] + [a for dev in gpu_devices() for a in ("--dev-bind", dev, dev)]
    cmd += ["--remount-ro", "/", "--chdir", "/tmp", "--clearenv"]  # the jail's own root too: only /tmp is writable
    env = clean_env("/tmp")
    if result.nested:  # how a peer-layout evaluator's candidate gets a jail of its own (evolve/compat/separate.py)
        env["EVOLVE_CANDIDATE_JAIL"] = json.dumps(candidate_command(bound, max(16, disk_mb // 4)))
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    return cmd


def candidate_command(bound: list[Path], disk_mb: int) -> list[str]:
    """Inside a jail: the command line of a second jail for a candidate that must not share the first one's
    processes or files (it sees the same code and libraries, a /tmp of its own, no /proc)."""
    cmd = ["bwrap", *_nested_namespaces(), *_system_binds(), "--size", str(disk_mb * 1024 * 1024), "--tmpfs", "/tmp"]
    for path in bound:
        cmd += ["--ro-bind", str(path), str(path)]
    cmd += ["--dev", "/dev", "--remount-ro", "/", "--chdir", "/tmp", "--clearenv"]
    for key, value in clean_env("/tmp").items():
        cmd += ["--setenv", key, value]
    return cmd
