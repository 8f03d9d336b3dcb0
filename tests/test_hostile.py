"""The hostile-program suite through the CLI: `evolve baselines tests/data/hostile` evaluates every
attack in the sandbox, fresh and warm. The run goes on, each failure is classified, no secret
leaks, nothing is written outside, and no fitness is inflated."""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path

import pytest
from conftest import REPO, run_cli

from evaluators.cgroups import JailCgroups
from evaluators.sandbox import bubblewrap_available
from problems.function_min.problem import shifted

pytestmark = pytest.mark.slow  # end to end: real runs through the CLI, sandbox and Ray

SECRET = "hunter2-evolve-secret"
EXPECTED = {
    "honest": None, "infinite_loop": "timeout", "sleep": "timeout", "memory_bomb": "memory",
    "fork_bomb": "timeout",
    # Python 3.11 frames live on the heap: unbounded recursion ends on whichever limit comes first
    "deep_recursion": {"crash", "memory", "timeout"}, "read_environ": None, "read_proc_environ": None,
    "read_parent_environ": None, "network": None, "write_outside": None,
    # the parent is the warm server (killed: crash) or the jail's init, which ignores the signal
    "kill_parent": {"crash", None},
    "patch_harness": None, "fake_metrics": None, "segfault": "crash", "huge_stdout": None,
    "nan_point": "nan", "inf_point": "nan", "sys_exit": "contract", "os_exit": "contract",
    "threads_left_running": None, "over_budget": "contract", "wrong_shape": "contract",
    "stdout_flood": "crash",
}


def _true_fitness(point: list[float], stage: str) -> float:
    trial = 0 if stage == "quick" else 1  # the hostile problem runs one trial per stage
    return -math.log10(1.0 + shifted(trial, len(point), point))


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "fresh"])
def test_hostile_suite_through_the_cli(warm: bool, tmp_path: Path) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 47613))
    listener.listen(8)
    listener.settimeout(0.2)
    outside = [Path(p) for p in ("/work/evolve-hostile-was-here", "/root/evolve-hostile-was-here",
                                 "/var/tmp/evolve-hostile-was-here", "/etc/evolve-hostile-was-here")]
    cgroups = Path("/sys/fs/cgroup/pids")
    before = {p.name for p in cgroups.glob("evolve-*")} if cgroups.is_dir() else set()
    try:
        proc = run_cli("baselines", str(REPO / "tests" / "data" / "hostile"), "--timeout-s", "10",
                       "--warm" if warm else "--no-warm", "--json",
                       env={"EVOLVE_API_KEY": SECRET}, timeout=600)
        with pytest.raises(socket.timeout):
            listener.accept()
    finally:
        listener.close()
    assert SECRET not in proc.stdout and SECRET not in proc.stderr
    rows = {r["seed"]: r for r in json.loads(proc.stdout)}
    expected = dict(EXPECTED)
    if not bubblewrap_available():
        for name in ("write_outside", "read_proc_environ", "read_parent_environ"):
            expected.pop(name)
    probe = JailCgroups(8)
    if probe.path is None:
        expected.pop("fork_bomb")
    probe.close()
    assert set(rows) == set(expected)
    assert len(rows) >= 19
    for name, kind in expected.items():
        allowed = kind if isinstance(kind, set) else {kind}
        assert rows[name]["failure_kind"] in allowed, (name, rows[name]["failure"])
    honest = rows["honest"]["fitness"]
    assert honest == pytest.approx(_true_fitness([0.0] * 5, rows["honest"]["stage_reached"]))
    for name in ("patch_harness", "fake_metrics"):  # returned [4]*5: scored as exactly that point
        assert rows[name]["fitness"] == pytest.approx(_true_fitness([4.0] * 5, rows[name]["stage_reached"])), name
    for name in ("read_environ", "read_proc_environ", "read_parent_environ", "network", "write_outside",
                 "threads_left_running", "huge_stdout"):
        if name in rows:
            assert rows[name]["fitness"] == pytest.approx(honest), name
    assert rows["threads_left_running"]["seconds"] < 10
    assert rows["huge_stdout"]["output_chars"] <= 4100
    assert not any(p.exists() for p in outside)
    if cgroups.is_dir():  # every pids cgroup the run made was removed when it ended
        # (a cgroup is named evolve-<creator pid>-...: those of other evolve processes still alive are theirs)
        left = {p.name for p in cgroups.glob("evolve-*-*") if not Path(f"/proc/{p.name.split('-')[1]}").exists()}
        assert left <= before, left - before

