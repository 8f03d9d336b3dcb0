"""Hostile candidates against the sandbox and cascade (unit level, real child processes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evaluators.cascade import evaluate as run_job
from evaluators.jobs import EvalJob
from evaluators.sandbox import Limits
from evaluators.static_rules import StaticRuleViolation, check_program
from evolve.loader import ProblemRef, builtin_problems
from evolve.program import FailureKind

REF = ProblemRef(str(builtin_problems()["function_min"]), {"budget": 200, "trials": 1})
LIMITS = Limits(timeout_s=5, memory_mb=512, cpu_seconds=10, max_output_chars=2000)

GOOD = """
def search(f, dim, budget, rng):
    return [0.0] * dim
"""


def evaluate(body: str, limits: Limits = LIMITS, warm: bool = False):
    return run_job(EvalJob(1, body), REF, limits, warm=warm)


def test_cascade_stops_below_a_stage_threshold() -> None:
    r = evaluate(GOOD)  # the origin is far from the hidden optimum: below the quick stage's threshold
    assert r.ok and r.stage_reached == "quick" and r.fitness is not None and r.fitness < -1.6
    assert set(r.metrics) == {"quick"}


def test_a_good_program_passes_every_stage() -> None:
    code = (builtin_problems()["function_min"] / "initial_program.py").read_text().replace("step = 3.0", "step = 1.0")
    r = evaluate(code)
    assert r.ok and r.stage_reached == "full" and set(r.metrics) == {"quick", "full"}


@pytest.mark.parametrize("code, kind", [
    ("def search(f, dim, budget, rng):\n    while True:\n        pass\n", FailureKind.TIMEOUT),
    ("import time\ndef search(f, dim, budget, rng):\n    time.sleep(60)\n", FailureKind.TIMEOUT),
    ("def search(f, dim, budget, rng):\n    x = [0.0] * (10**10)\n", FailureKind.MEMORY),
    ("def search(f, dim, budget, rng):\n    return search(f, dim, budget, rng)\n", FailureKind.CRASH),
    ("import sys\ndef search(f, dim, budget, rng):\n    sys.exit(0)\n", FailureKind.CONTRACT),
    ("import os\ndef search(f, dim, budget, rng):\n    os._exit(0)\n", FailureKind.CONTRACT),
    ("import os, signal\ndef search(f, dim, budget, rng):\n    os.kill(os.getpid(), signal.SIGSEGV)\n",
     FailureKind.CRASH),
    ("import ctypes\ndef search(f, dim, budget, rng):\n    ctypes.string_at(0)\n", FailureKind.CRASH),
    ("def search(f, dim, budget, rng):\n    return 'nope'\n", FailureKind.CONTRACT),
    ("def search(f, dim, budget, rng):\n    return [float('nan')] * dim\n", FailureKind.NAN),
    ("def search(f, dim, budget, rng):\n    for _ in range(budget + 5):\n        f([0.0] * dim)\n"
     "    return [0.0] * dim\n",
     FailureKind.CONTRACT),
    ("import not_a_module\ndef search(f, dim, budget, rng):\n    return [0.0] * dim\n", FailureKind.IMPORT),
    ("def search(f, dim, budget, rng) return 1\n", FailureKind.SYNTAX),
    ("x = 1\n", FailureKind.CONTRACT),
])
@pytest.mark.slow
@pytest.mark.parametrize("warm", [False, True], ids=["fresh", "warm"])
def test_hostile_program_fails_with_the_right_kind(code: str, kind: FailureKind, warm: bool) -> None:
    r = evaluate(code, warm=warm)
    assert not r.ok and r.failure_kind == kind, r
    assert r.fitness is None


def test_threads_left_running_do_not_hang_the_evaluation() -> None:
    code = ("import threading, time\n"
            "def search(f, dim, budget, rng):\n"
            "    threading.Thread(target=time.sleep, args=(600,)).start()\n"
            "    return [0.0] * dim\n")
    r = evaluate(code)
    assert r.ok and r.seconds < 5


def test_forged_output_and_metrics_gain_nothing() -> None:
    honest = evaluate(GOOD).fitness
    forged = ("import json\n"
              "def search(f, dim, budget, rng):\n"
              "    print(json.dumps({'ok': True, 'artifacts': {'points': [[0.0]*dim]}, 'fitness': 1e9}))\n"
              "    with open('result.json', 'w') as fh:\n"
              "        fh.write(json.dumps({'ok': True, 'artifacts': {'points': [[0.0]*dim]}}))\n"
              "    return [0.0] * dim\n")
    r = evaluate(forged)
    assert r.ok and r.fitness == honest  # the harness recomputes f at the returned point


def test_huge_output_is_truncated() -> None:
    code = "def search(f, dim, budget, rng):\n    print('x' * 10_000_000)\n    return [0.0] * dim\n"
    r = evaluate(code)
    assert r.ok and len(r.output) < 2100 and "truncated" in r.output


@pytest.mark.parametrize("warm", [False, True], ids=["fresh", "warm"])
def test_controller_secrets_are_not_visible(monkeypatch: pytest.MonkeyPatch, warm: bool) -> None:
    monkeypatch.setenv("EVOLVE_TEST_SECRET", "hunter2-planted")
    code = ("import os\n"
            "def search(f, dim, budget, rng):\n"
            "    assert 'hunter2' not in repr(dict(os.environ)), 'secret in os.environ'\n"
            "    with open('/proc/self/environ', 'rb') as fh:\n"
            "        assert b'hunter2' not in fh.read(), 'secret in /proc/self/environ'\n"
            "    return [0.0] * dim\n")
    r = evaluate(code, warm=warm)
    assert r.ok, r.reason


def test_working_dir_is_fresh_and_removed(tmp_path: Path) -> None:
    code = ("import os\n"
            "def search(f, dim, budget, rng):\n"
            "    print('CWD=' + os.getcwd())\n"
            "    return [0.0] * dim\n")
    r = evaluate(code)
    cwd = next(line[4:] for line in r.output.splitlines() if line.startswith("CWD="))
    assert "evolve-cand-" in cwd and not os.path.exists(cwd)


@pytest.mark.parametrize("code, rule", [
    ("import os\n", "import"),
    ("import subprocess\n", "import"),
    ("from socket import socket\n", "import"),
    ("x = ().__class__\n", "dunder_access"),
    ("eval('1')\n", "banned_name"),
    ("open('/etc/passwd')\n", "banned_name"),
    ("getattr(object, name)\n", "computed_getattr"),
    ("getattr(object, '_private')\n", "computed_getattr"),
    ("__builtins__\n", "dunder_access"),
])
def test_static_rules(code: str, rule: str) -> None:
    with pytest.raises(StaticRuleViolation) as info:
        check_program(code, frozenset({"math", "random"}))
    assert info.value.rule == rule


def test_static_rules_allow_ordinary_code() -> None:
    check_program("import math\nfrom random import Random\ndef f(x):\n    return getattr(math, 'sqrt')(x)\n",
                  frozenset({"math", "random"}))


@pytest.mark.skipif(not __import__("evaluators.sandbox").sandbox.bubblewrap_available(),
                    reason="bubblewrap is not usable here: no network namespace")
def test_no_network_and_read_only_files(tmp_path: Path) -> None:
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    target = tmp_path / "written-by-candidate"
    code = ("import socket\n"
            "def search(f, dim, budget, rng):\n"
            "    try:\n"
            f"        socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "        print('CONNECTED')\n"
            "    except OSError as exc:\n"
            "        print('BLOCKED', exc)\n"
            "    try:\n"
            f"        open({str(target)!r}, 'w').write('x')\n"
            "        print('WROTE')\n"
            "    except OSError as exc:\n"
            "        print('READONLY', exc)\n"
            "    return [0.0] * dim\n")
    r = evaluate(code)
    with pytest.raises(socket.timeout):
        server.accept()
    server.close()
    assert "BLOCKED" in r.output and "CONNECTED" not in r.output
    assert "READONLY" in r.output and not target.exists()


def test_a_candidate_that_kills_its_warm_server_fails_alone() -> None:
    killer = "import os, signal\ndef search(f, dim, budget, rng):\n    os.kill(os.getppid(), signal.SIGKILL)\n"
    r = evaluate(killer, warm=True)
    assert not r.ok and r.failure_kind == FailureKind.CRASH
    after = evaluate(GOOD, warm=True)  # a new server replaces the dead one
    assert after.ok and after.fitness == evaluate(GOOD).fitness


def test_warm_and_fresh_give_the_same_result() -> None:
    code = (builtin_problems()["function_min"] / "initial_program.py").read_text()
    assert evaluate(code, warm=True).fitness == evaluate(code, warm=False).fitness


@pytest.mark.slow
def test_gpu_path_candidates_never_fork_from_a_cuda_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    """A warm server whose problem initialised CUDA refuses to fork; candidates start fresh instead.

    Also: the candidate sees the GPUs its task was given (CUDA_VISIBLE_DEVICES) and nothing else.
    """
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    ref = ProblemRef(str(Path(__file__).parent / "data" / "cuda_prepare"), {})
    for warm in (True, False):
        result = run_job(EvalJob(1, "# EVOLVE-BLOCK-START\ndef value():\n    return 2.0\n# EVOLVE-BLOCK-END\n"),
                         ref, Limits(timeout_s=60), warm=warm)
        assert result.ok, result.reason
        metrics = result.metrics["main"]
        assert metrics["cuda_state_inherited"] is False  # a fresh interpreter, not a fork of the server
        assert metrics["visible"] == "1"
        assert not [k for k in metrics["env"] if "KEY" in k or "SECRET" in k]


def test_jail_binds_gpu_devices_and_a_problem_under_tmp(monkeypatch: pytest.MonkeyPatch) -> None:
    from evaluators import sandbox

    monkeypatch.setattr(sandbox, "gpu_devices", lambda: ["/dev/nvidia0", "/dev/nvidiactl"])
    cmd = sandbox._bwrap_prefix(Path("/tmp/work"), "/tmp/my-problem")
    assert ["--dev-bind", "/dev/nvidia0", "/dev/nvidia0"] == cmd[cmd.index("/dev/nvidia0") - 1:][:3]
    assert "--dev-bind" in cmd and "/dev/nvidiactl" in cmd
    assert cmd[cmd.index("/tmp/my-problem") - 1] == "--ro-bind"


def test_jail_binds_back_import_paths_under_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A venv under /tmp whose dependencies come from another directory there (a .pth file, as a CI clone's
    test venv does): the jail's tmpfs over /tmp must not hide what the controller can import."""
    from evaluators import sandbox

    deps = tmp_path / "site-packages"
    deps.mkdir()
    monkeypatch.setattr(sandbox.sys, "path", [*sandbox.sys.path, str(deps), str(tmp_path / "missing"), "/tmp"])
    cmd = sandbox._bwrap_prefix(tmp_path / "work")
    assert cmd[cmd.index(str(deps.resolve())) - 1] == "--ro-bind"
    assert str(tmp_path / "missing") not in cmd
    assert cmd.count("/tmp") == 1  # the tmpfs itself: a script run from /tmp does not expose all of it


def test_the_smaller_of_the_evaluator_and_stage_limits_applies() -> None:
    from evolve.problem import Stage

    assert Limits().wall_seconds(Stage("s")) == 60.0  # neither set: the default
    assert Limits().wall_seconds(Stage("s", timeout_s=300)) == 300  # the stage's own
    assert Limits(timeout_s=20).wall_seconds(Stage("s", timeout_s=300)) == 20  # the evaluator caps it
    assert Limits(timeout_s=500).wall_seconds(Stage("s", timeout_s=300)) == 300
    assert Limits(timeout_s=20).for_child(Stage("s"))["cpu_seconds"] == 25  # CPU follows the wall limit
    assert Limits(timeout_s=20, cpu_seconds=7).for_child(Stage("s"))["cpu_seconds"] == 7


def test_an_evaluator_timeout_below_the_stage_limit_kills_the_candidate() -> None:
    sleeper = "import time\ndef search(f, dim, budget, rng):\n    time.sleep(30)\n"
    r = evaluate(sleeper, Limits(timeout_s=2, memory_mb=512))
    assert r.failure_kind == FailureKind.TIMEOUT and r.seconds < 10 and "2s" in (r.reason or "")


def test_replaced_warm_servers_are_dropped() -> None:
    from evaluators import sandbox

    killer = "import os, signal\ndef search(f, dim, budget, rng):\n    os.kill(os.getppid(), signal.SIGKILL)\n"
    evaluate(GOOD, warm=True)
    before = sandbox.live_warm_servers()
    for _ in range(3):
        assert evaluate(killer, warm=True).failure_kind == FailureKind.CRASH
        assert evaluate(GOOD, warm=True).ok
    assert sandbox.live_warm_servers() == before


def test_fingerprint_jobs_see_behaviour_not_text() -> None:
    from evaluators.jobs import JobKind

    base = "def search(f, dim, budget, rng):\n    best = [rng.uniform(-1, 1) for _ in range(dim)]\n" \
           "    for _ in range(50):\n        f(best)\n    return best\n"
    same = base.replace("    return best\n", "    unused = 3 * 7\n    return best\n")
    other = base.replace("range(50)", "range(51)")
    prints = [run_job(EvalJob(1, code, JobKind.FINGERPRINT), REF, LIMITS) for code in (base, same, other)]
    assert all(p.ok and p.fingerprint for p in prints)
    assert prints[0].fingerprint == prints[1].fingerprint != prints[2].fingerprint


@pytest.mark.skipif(__import__("evaluators.cgroups").cgroups._root("memory") is None,
                    reason="no writable memory cgroup here")
@pytest.mark.parametrize("warm", [False, True], ids=["fresh", "warm"])
def test_gpu_jails_cap_memory_with_a_cgroup_instead_of_rlimit_as(warm: bool) -> None:
    """A CUDA process cannot live under RLIMIT_AS; GPU candidates get a memory cgroup, and running over
    it is a `memory` failure, not a crash."""
    hog = "def search(f, dim, budget, rng):\n    x = bytearray(900 * 1024 * 1024)\n    return [0.0] * dim\n"
    limits = Limits(timeout_s=30, memory_mb=400, gpu=True)
    assert limits.for_child(__import__("evolve.problem").problem.Stage("s"))["address_space"] is False
    r = evaluate(hog, limits, warm=warm)
    assert not r.ok and r.failure_kind == FailureKind.MEMORY, r
    assert evaluate(GOOD, limits, warm=warm).ok  # the jail still works for the next candidate


def test_the_parent_never_follows_what_a_candidate_leaves_in_its_directory(tmp_path: Path) -> None:
    """Symlinks, FIFOs and oversized files planted in the working directory are not read by the trusted
    side (a symlink to /proc/self/environ would hand it the controller's keys)."""
    import json as _json

    from evaluators.sandbox import _classify, _read_head

    secret = tmp_path / "secret.txt"
    secret.write_text("sk-parent-secret")
    work = tmp_path / "work"
    work.mkdir()
    os.symlink(secret, work / "leak.bin")
    os.symlink(secret, work / "output.txt")
    os.mkfifo(work / "pipe.bin")
    (work / "result.json").write_text(_json.dumps({"ok": True, "artifacts": {"x": {"$blob": "leak.bin"}}}))
    assert _read_head(work / "output.txt", 4000) == ""
    run = _classify(0, work / "result.json", "", 0.0)
    assert run.artifacts is None and run.failure == FailureKind.CONTRACT
    (work / "result.json").write_text(_json.dumps({"ok": True, "artifacts": {"x": {"$blob": "pipe.bin"}}}))
    assert _classify(0, work / "result.json", "", 0.0).artifacts is None  # and it did not block on the FIFO
    big = work / "big.bin"
    big.write_bytes(b"x" * 1024)
    (work / "result.json").write_text(_json.dumps({"ok": True, "artifacts": {"x": [{"$blob": "big.bin"}] * 5}}))
    assert _classify(0, work / "result.json", "", 0.0, max_bytes=3000).artifacts is None  # repeats count too
    assert _classify(0, work / "result.json", "", 0.0, max_bytes=6000).artifacts == {"x": [b"x" * 1024] * 5}
    os.unlink(work / "result.json")
    os.symlink(secret, work / "result.json")
    assert _classify(0, work / "result.json", "", 0.0).artifacts is None


def test_a_daemon_left_by_a_candidate_does_not_outlive_its_job() -> None:
    """A grandchild in a session of its own escapes the process-group kill; the jail's cgroup does not."""
    import random as _random

    for warm in (False, True):
        marker = f"{_random.randint(1000, 9999)}.{_random.randint(1000, 9999)}"  # a command line nothing else has
        daemon = ("import subprocess\n"
                  "def search(f, dim, budget, rng):\n"
                  f"    subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
                  "    return [0.0] * dim\n")
        assert evaluate(daemon, warm=warm).ok
        left = [p for p in Path("/proc").glob("[0-9]*") if (p / "cmdline").is_file()
                and (p / "cmdline").read_bytes() == f"sleep\x00{marker}\x00".encode()]
        assert not left, (warm, left)
