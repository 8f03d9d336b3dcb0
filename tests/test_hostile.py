"""The hostile-program suite through the CLI: `evolve baselines tests/data/hostile` evaluates every
attack in the sandbox, fresh and warm. The run goes on, each failure is classified, no secret
leaks, nothing is written outside, and no fitness is inflated."""

from __future__ import annotations

import json
import math
import socket
import threading
from pathlib import Path

import pytest
from conftest import REPO, run_cli

from evaluators import cgroups, jail
from problems.function_min.problem import shifted

pytestmark = [
    pytest.mark.slow,  # end to end: real runs through the CLI, sandbox and Ray
    pytest.mark.skipif(not jail.probe().ok, reason="bubblewrap cannot run here (the suite attacks the host)"),
]

SECRET = "hunter2-evolve-secret"
EXPECTED = {
    "honest": None,
    "infinite_loop": "timeout",
    "sleep": "timeout",
    "memory_bomb": "memory",
    "fork_bomb": "timeout",
    # Python 3.11 frames live on the heap: unbounded recursion ends on whichever limit comes first
    "deep_recursion": {"crash", "memory", "timeout"},
    "read_environ": None,
    "read_proc_environ": None,
    "read_parent_environ": None,
    "network": None,
    "write_outside": None,
    # the parent is the warm server (killed: crash) or the jail's init, which ignores the signal
    "kill_parent": {"crash", None},
    "patch_harness": None,
    "fake_metrics": None,
    "segfault": "crash",
    "huge_stdout": None,
    "nan_point": "nan",
    "inf_point": "nan",
    "sys_exit": "contract",
    "os_exit": "contract",
    "threads_left_running": None,
    "over_budget": "contract",
    "wrong_shape": "contract",
    "stdout_flood": "crash",
    # sandbox v2: the host stays invisible, the server unreachable, and limits hold for the candidate as a whole
    "read_host_files": None,
    "read_archive": None,
    "unix_socket": None,
    "reopen_server_fd": None,
    "ptrace_server": None,
    "stop_server": "timeout",
    "fork_memory": "memory",
    "fill_disk": None,
    "huge_result": "contract",
    "cpu_hog": None,
    "daemon_overwrite": None,
}
# The point each program returns when its attack fails (the trusted score is that point's value).
POINTS = {"patch_harness": 4.0, "fake_metrics": 4.0, "daemon_overwrite": 4.0}
HOST_FILES = {
    Path("/root/.evolve-hostile-secret"): "hunter2-host-file",
    Path("/home/evolve-hostile/.ssh/id_ed25519"): "hunter2-host-file",
    REPO / "runs" / "hostile-probe" / "archive.sqlite": "hunter2-archive",
}
SOCKET = Path("/var/tmp/evolve-hostile.sock")


def _true_fitness(point: list[float], stage: str) -> float:
    trial = 0 if stage == "quick" else 1  # the hostile problem runs one trial per stage
    return -math.log10(1.0 + shifted(trial, len(point), point))


def _plant() -> tuple[list[Path], socket.socket]:
    """Secrets where a host keeps them, a run's archive under the project, a Unix socket that answers."""
    made = []
    for path, text in HOST_FILES.items():
        for parent in reversed(path.parents):
            if not parent.exists():
                parent.mkdir()
                made.append(parent)
        path.write_text(text)
        made.append(path)
    SOCKET.unlink(missing_ok=True)
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(SOCKET))
    unix.listen(8)
    unix.settimeout(0.2)
    threading.Thread(target=_answer, args=(unix,), daemon=True).start()
    return made, unix


def _answer(unix: socket.socket) -> None:
    while True:
        try:
            conn, _ = unix.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        conn.sendall(b"PONG")
        conn.close()


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "fresh"])
def test_hostile_suite_through_the_cli(warm: bool, tmp_path: Path) -> None:
    made, unix = _plant()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 47613))
    listener.listen(8)
    listener.settimeout(0.2)
    outside = [
        Path(p)
        for p in (
            "/work/evolve-hostile-was-here",
            "/root/evolve-hostile-was-here",
            "/var/tmp/evolve-hostile-was-here",
            "/etc/evolve-hostile-was-here",
        )
    ]
    pids_root = Path("/sys/fs/cgroup/pids")
    before = {p.name for p in pids_root.glob("evolve-*")} if pids_root.is_dir() else set()
    try:
        proc = run_cli(
            "baselines",
            str(REPO / "tests" / "data" / "hostile"),
            "--timeout-s",
            "10",
            "--warm" if warm else "--no-warm",
            "--json",
            env={"EVOLVE_API_KEY": SECRET},
            timeout=600,
        )
        with pytest.raises(socket.timeout):
            listener.accept()
    finally:
        listener.close()
        unix.close()
        SOCKET.unlink(missing_ok=True)
        for path in reversed(made):
            path.unlink() if path.is_file() else path.rmdir()
    assert SECRET not in proc.stdout and SECRET not in proc.stderr
    rows = {r["seed"]: r for r in json.loads(proc.stdout)}
    expected = dict(EXPECTED)
    if not cgroups.available()["pids"]:
        expected.pop("fork_bomb")
    assert set(rows) == set(expected)
    assert len(rows) >= 19
    for name, kind in expected.items():
        allowed = kind if isinstance(kind, set) else {kind}
        assert rows[name]["failure_kind"] in allowed, (name, rows[name]["failure"])
    honest = rows["honest"]["fitness"]
    assert honest == pytest.approx(_true_fitness([0.0] * 5, rows["honest"]["stage_reached"]))
    for name, row in rows.items():  # every program that ran is scored at exactly the point it returned
        if row["failure_kind"] is None:
            point = [POINTS.get(name, 0.0)] * 5
            assert row["fitness"] == pytest.approx(_true_fitness(point, row["stage_reached"])), name
    assert rows["threads_left_running"]["seconds"] < 10
    assert rows["stop_server"]["seconds"] < 10 + 8  # a stopped server does not hold the caller past the limit
    assert rows["huge_stdout"]["output_chars"] <= 4100
    assert not any(p.exists() for p in outside)
    if pids_root.is_dir():  # every pids cgroup the run made was removed when it ended
        # (a cgroup is named evolve-<creator pid>-...: those of other evolve processes still alive are theirs)
        left = {p.name for p in pids_root.glob("evolve-*-*") if not Path(f"/proc/{p.name.split('-')[1]}").exists()}
        assert left <= before, left - before
