"""Hostile candidates against the sandbox and cascade (unit level, real child processes)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from evaluators import jail
from evaluators.cascade import evaluate as run_job
from evaluators.jobs import EvalJob
from evaluators.limits import StageLimits, wall_seconds
from evaluators.static_rules import StaticRuleViolation, check_program
from evolve.config import EvaluatorConfig
from evolve.loader import ProblemRef, builtin_problems
from evolve.program import FailureKind

REF = ProblemRef(str(builtin_problems()["function_min"]), {"budget": 200, "trials": 1})
LIMITS = EvaluatorConfig(timeout_s=5, memory_mb=512, cpu_seconds=10, max_output_chars=2000)

GOOD = """
def search(f, dim, budget, rng):
    return [0.0] * dim
"""


def evaluate(body: str, limits: EvaluatorConfig = LIMITS, warm: bool = False):
    return run_job(EvalJob(1, body), REF, limits.model_copy(update={"warm_start": warm}))


def test_cascade_stops_below_a_stage_threshold() -> None:
    r = evaluate(GOOD)  # the origin is far from the hidden optimum: below the quick stage's threshold
    assert r.ok and r.stage_reached == "quick" and r.fitness is not None and r.fitness < -1.6
    assert set(r.metrics) == {"quick"}


def test_a_good_program_passes_every_stage() -> None:
    code = (builtin_problems()["function_min"] / "initial_program.py").read_text().replace("step = 3.0", "step = 1.0")
    r = evaluate(code)
    assert r.ok and r.stage_reached == "full" and set(r.metrics) == {"quick", "full"}


@pytest.mark.parametrize(
    "code, kind",
    [
        ("def search(f, dim, budget, rng):\n    while True:\n        pass\n", FailureKind.TIMEOUT),
        ("import time\ndef search(f, dim, budget, rng):\n    time.sleep(60)\n", FailureKind.TIMEOUT),
        ("def search(f, dim, budget, rng):\n    x = [0.0] * (10**10)\n", FailureKind.MEMORY),
        ("def search(f, dim, budget, rng):\n    return search(f, dim, budget, rng)\n", FailureKind.CRASH),
        ("import sys\ndef search(f, dim, budget, rng):\n    sys.exit(0)\n", FailureKind.CONTRACT),
        ("import os\ndef search(f, dim, budget, rng):\n    os._exit(0)\n", FailureKind.CONTRACT),
        (
            "import os, signal\ndef search(f, dim, budget, rng):\n    os.kill(os.getpid(), signal.SIGSEGV)\n",
            FailureKind.CRASH,
        ),
        ("import ctypes\ndef search(f, dim, budget, rng):\n    ctypes.string_at(0)\n", FailureKind.CRASH),
        ("def search(f, dim, budget, rng):\n    return 'nope'\n", FailureKind.CONTRACT),
        ("def search(f, dim, budget, rng):\n    return [float('nan')] * dim\n", FailureKind.NAN),
        (
            "def search(f, dim, budget, rng):\n    for _ in range(budget + 5):\n        f([0.0] * dim)\n"
            "    return [0.0] * dim\n",
            FailureKind.CONTRACT,
        ),
        ("import not_a_module\ndef search(f, dim, budget, rng):\n    return [0.0] * dim\n", FailureKind.IMPORT),
        ("def search(f, dim, budget, rng) return 1\n", FailureKind.SYNTAX),
        ("x = 1\n", FailureKind.CONTRACT),
    ],
)
@pytest.mark.slow
@pytest.mark.parametrize("warm", [False, True], ids=["fresh", "warm"])
def test_hostile_program_fails_with_the_right_kind(code: str, kind: FailureKind, warm: bool) -> None:
    r = evaluate(code, warm=warm)
    assert not r.ok and r.failure_kind == kind, r
    assert r.fitness is None


def test_threads_left_running_do_not_hang_the_evaluation() -> None:
    code = (
        "import threading, time\n"
        "def search(f, dim, budget, rng):\n"
        "    threading.Thread(target=time.sleep, args=(600,)).start()\n"
        "    return [0.0] * dim\n"
    )
    r = evaluate(code)
    assert r.ok and r.seconds < 5


def test_forged_output_and_metrics_gain_nothing() -> None:
    honest = evaluate(GOOD).fitness
    forged = (
        "import json\n"
        "def search(f, dim, budget, rng):\n"
        "    print(json.dumps({'ok': True, 'artifacts': {'points': [[0.0]*dim]}, 'fitness': 1e9}))\n"
        "    with open('result.json', 'w') as fh:\n"
        "        fh.write(json.dumps({'ok': True, 'artifacts': {'points': [[0.0]*dim]}}))\n"
        "    return [0.0] * dim\n"
    )
    r = evaluate(forged)
    assert r.ok and r.fitness == honest  # the harness recomputes f at the returned point


def test_huge_output_is_truncated() -> None:
    code = "def search(f, dim, budget, rng):\n    print('x' * 10_000_000)\n    return [0.0] * dim\n"
    r = evaluate(code)
    assert r.ok and len(r.output) < 2100 and "truncated" in r.output


@pytest.mark.parametrize("warm", [False, True], ids=["fresh", "warm"])
def test_controller_secrets_are_not_visible(monkeypatch: pytest.MonkeyPatch, warm: bool) -> None:
    monkeypatch.setenv("EVOLVE_TEST_SECRET", "hunter2-planted")
    code = (
        "import os\n"
        "def search(f, dim, budget, rng):\n"
        "    assert 'hunter2' not in repr(dict(os.environ)), 'secret in os.environ'\n"
        "    with open('/proc/self/environ', 'rb') as fh:\n"
        "        assert b'hunter2' not in fh.read(), 'secret in /proc/self/environ'\n"
        "    return [0.0] * dim\n"
    )
    r = evaluate(code, warm=warm)
    assert r.ok, r.reason


@pytest.mark.parametrize("warm", [False, True], ids=["fresh", "warm"])
def test_working_dir_is_fresh_and_on_the_jails_tmpfs(warm: bool) -> None:
    code = (
        "import os\n"
        "def search(f, dim, budget, rng):\n"
        "    print('CWD=' + os.getcwd(), sorted(os.listdir('.')), sorted(os.listdir('..')))\n"
        "    open('left-behind.txt', 'w').write('x')\n"
        "    return [0.0] * dim\n"
    )
    first, second = evaluate(code, warm=warm), evaluate(code, warm=warm)
    assert first.ok and second.ok
    for r in (first, second):  # /tmp/job-N inside the jail, empty, and the previous job's directory is gone
        line = next(line for line in r.output.splitlines() if line.startswith("CWD="))
        assert line.startswith("CWD=/tmp/job-") and "[] [" in line and "left-behind" not in line.split("] ")[1]


@pytest.mark.parametrize(
    "code, rule",
    [
        ("import os\n", "import"),
        ("import subprocess\n", "import"),
        ("from socket import socket\n", "import"),
        ("x = ().__class__\n", "dunder_access"),
        ("eval('1')\n", "banned_name"),
        ("open('/etc/passwd')\n", "banned_name"),
        ("getattr(object, name)\n", "computed_getattr"),
        ("getattr(object, '_private')\n", "computed_getattr"),
        ("__builtins__\n", "dunder_access"),
        ("import random\ndef f():\n    return random._os.popen('id').read()\n", "private_attribute"),
        ("import random as r\nx = r.Random()._randbelow(3)\n", "private_attribute"),
    ],
)
def test_static_rules(code: str, rule: str) -> None:
    with pytest.raises(StaticRuleViolation) as info:
        check_program(code, frozenset({"math", "random"}))
    assert info.value.rule == rule


def test_static_rules_allow_ordinary_code() -> None:
    check_program(
        "import math\nfrom random import Random\ndef f(x):\n    return getattr(math, 'sqrt')(x)\n",
        frozenset({"math", "random"}),
    )


def test_a_problem_may_open_private_names_of_its_own_objects_but_not_of_modules() -> None:
    """Peer layouts run arbitrary Python with classes of their own (self._cache); a module's private names
    (the way from an allowed module to a banned one) stay closed unless a problem opens those too."""
    from evolve.problem import CodeRules

    own = "import math\nclass C:\n    def __init__(self):\n        self._cache = {}\n"
    check_program(own, frozenset({"math"}), CodeRules(private_attributes=True))
    with pytest.raises(StaticRuleViolation):
        check_program(own, frozenset({"math"}))  # refused by default
    with pytest.raises(StaticRuleViolation, match="module 'math'"):
        check_program("import math\nx = math._private\n", frozenset({"math"}), CodeRules(private_attributes=True))


@pytest.mark.skipif(not jail.probe().ok, reason="bubblewrap cannot run here")
def test_no_network_and_read_only_files(tmp_path: Path) -> None:
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    target = tmp_path / "written-by-candidate"
    code = (
        "import socket\n"
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
        "    return [0.0] * dim\n"
    )
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
        result = run_job(
            EvalJob(1, "# EVOLVE-BLOCK-START\ndef value():\n    return 2.0\n# EVOLVE-BLOCK-END\n"),
            ref,
            EvaluatorConfig(timeout_s=60, warm_start=warm),
        )
        assert result.ok, result.reason
        metrics = result.metrics["main"]
        assert metrics["cuda_state_inherited"] is False  # a fresh interpreter, not a fork of the server
        assert metrics["visible"] == "1"
        assert not [k for k in metrics["env"] if "KEY" in k or "SECRET" in k]


def test_the_jail_binds_only_the_gpus_a_task_was_given(monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = {"/dev/nvidia0", "/dev/nvidia1", "/dev/nvidiactl", "/dev/nvidia-uvm"}
    monkeypatch.setattr(jail.os.path, "exists", lambda p: p in nodes or os.path.lexists(p))
    monkeypatch.setattr("glob.glob", lambda pattern: sorted(n for n in nodes if n[-1].isdigit()))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert jail.gpu_devices() == ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia1"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert "/dev/nvidia0" in jail.gpu_devices() and "/dev/nvidia1" in jail.gpu_devices()  # unset: all of them
    cmd = jail.command(None, 64, gpu=True) if jail.probe().ok else []
    if cmd:
        assert cmd[cmd.index("/dev/nvidia0") - 1] == "--dev-bind"


def test_the_jail_binds_an_allow_list_and_masks_run_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A venv under /tmp whose dependencies come from another directory there (a .pth file, as a CI clone's
    test venv does) stays importable; the checkout itself is never bound (a run directory may live in it);
    a run directory inside a bound folder is masked."""
    deps = tmp_path / "site-packages"
    deps.mkdir()
    problem = tmp_path / "problem"
    (problem / "runs" / "r1").mkdir(parents=True)
    monkeypatch.setattr(
        jail.sys, "path", [*jail.sys.path, str(deps), str(tmp_path / "missing"), "/tmp", str(jail.REPO_ROOT)]
    )
    if not jail.probe().ok:
        pytest.skip("bubblewrap cannot run here")
    cmd = jail.command(str(problem), 64, hidden=(str(problem / "runs" / "r1"),))
    binds = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--ro-bind"]
    assert str(deps.resolve()) in binds and str(problem.resolve()) in binds
    assert str(tmp_path / "missing") not in cmd and "/" not in binds and "/tmp" not in binds
    assert str(jail.REPO_ROOT) not in binds and str(jail.REPO_ROOT / "evolve") in binds
    assert cmd[cmd.index(str((problem / "runs" / "r1").resolve())) - 1] == "--tmpfs"
    assert not any(b.startswith(("/home", "/run", "/var")) or b == "/root" for b in binds)


def test_the_smaller_of_the_evaluator_and_stage_limits_applies() -> None:
    from evolve.problem import Stage

    assert wall_seconds(EvaluatorConfig(), Stage("s")) == 60.0  # neither set: the default
    assert wall_seconds(EvaluatorConfig(), Stage("s", timeout_s=300)) == 300  # the stage's own
    assert wall_seconds(EvaluatorConfig(timeout_s=20), Stage("s", timeout_s=300)) == 20  # the evaluator caps it
    assert wall_seconds(EvaluatorConfig(timeout_s=500), Stage("s", timeout_s=300)) == 300
    assert StageLimits.for_stage(EvaluatorConfig(timeout_s=20), Stage("s")).cpu_s == 25  # CPU follows the wall
    assert StageLimits.for_stage(EvaluatorConfig(timeout_s=20, cpu_seconds=7), Stage("s")).cpu_s == 7
    limits = StageLimits.for_stage(EvaluatorConfig(num_gpus=0.5), Stage("s"))
    assert limits.address_space is False and limits.gpu_memory_fraction == 0.5
    assert StageLimits.from_json(limits.to_json()) == limits  # the same object reaches the child


def test_an_evaluator_timeout_below_the_stage_limit_kills_the_candidate() -> None:
    sleeper = "import time\ndef search(f, dim, budget, rng):\n    time.sleep(30)\n"
    r = evaluate(sleeper, EvaluatorConfig(timeout_s=2, memory_mb=512))
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

    base = (
        "def search(f, dim, budget, rng):\n    best = [rng.uniform(-1, 1) for _ in range(dim)]\n"
        "    for _ in range(50):\n        f(best)\n    return best\n"
    )
    same = base.replace("    return best\n", "    unused = 3 * 7\n    return best\n")
    other = base.replace("range(50)", "range(51)")
    prints = [run_job(EvalJob(1, code, JobKind.FINGERPRINT), REF, LIMITS) for code in (base, same, other)]
    assert all(p.ok and p.fingerprint for p in prints)
    assert prints[0].fingerprint == prints[1].fingerprint != prints[2].fingerprint


NEEDS_MEMORY_CGROUP = pytest.mark.skipif(
    not __import__("evaluators.cgroups").cgroups.available()["memory"], reason="no writable memory cgroup here"
)


@NEEDS_MEMORY_CGROUP
@pytest.mark.parametrize("warm", [False, True], ids=["fresh", "warm"])
def test_gpu_jails_cap_memory_with_a_cgroup_instead_of_rlimit_as(warm: bool) -> None:
    """A CUDA process cannot live under RLIMIT_AS; GPU candidates are capped by the memory cgroup alone, and
    running over it is a `memory` failure, not a crash."""
    hog = "def search(f, dim, budget, rng):\n    x = bytearray(900 * 1024 * 1024)\n    return [0.0] * dim\n"
    limits = EvaluatorConfig(timeout_s=30, memory_mb=400, num_gpus=1)
    r = evaluate(hog, limits, warm=warm)
    assert not r.ok and r.failure_kind == FailureKind.MEMORY, r
    assert evaluate(GOOD, limits, warm=warm).ok  # the jail still works for the next candidate


@NEEDS_MEMORY_CGROUP
@pytest.mark.parametrize("warm", [False, True], ids=["fresh", "warm"])
def test_memory_is_capped_for_the_candidate_as_a_whole(warm: bool) -> None:
    """Four processes of 200 MB each stay under a per-process limit of 512 MB; together they are over it."""
    forks = (
        "import os, time\n"
        "def search(f, dim, budget, rng):\n"
        "    kids = []\n"
        "    for _ in range(4):\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        "            block = bytearray(200 * 1024 * 1024)\n"
        "            for i in range(0, len(block), 4096):\n"
        "                block[i] = 1\n"
        "            time.sleep(1)\n"
        "            os._exit(0)\n"
        "        kids.append(pid)\n"
        "    for k in kids:\n"
        "        os.waitpid(k, 0)\n"
        "    return [0.0] * dim\n"
    )
    r = evaluate(forks, EvaluatorConfig(timeout_s=20, memory_mb=512), warm=warm)
    assert not r.ok and r.failure_kind == FailureKind.MEMORY, r


@pytest.mark.skipif(not __import__("evaluators.cgroups").cgroups.available()["cpu"], reason="no CPU cgroup here")
def test_cpu_time_of_the_whole_candidate_is_capped_and_measured() -> None:
    """Three spinning processes get one core between them (num_cpus 1): the kernel's count of their CPU
    time, which the trusted side reads, stays at the wall-clock time."""
    spin = (
        "import os, time\n"
        "def search(f, dim, budget, rng):\n"
        "    kids = []\n"
        "    for _ in range(3):\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        "            end = time.monotonic() + 2\n"
        "            while time.monotonic() < end:\n"
        "                pass\n"
        "            os._exit(0)\n"
        "        kids.append(pid)\n"
        "    for k in kids:\n"
        "        os.waitpid(k, 0)\n"
        "    return [0.0] * dim\n"
    )
    r = evaluate(spin, EvaluatorConfig(timeout_s=20, memory_mb=512))
    assert r.ok, r.reason
    cpu = r.metrics["quick"]["cpu_seconds"]
    assert 1.0 < cpu < 1.15 * r.metrics["quick"]["seconds"], r.metrics


def test_a_result_too_large_to_parse_cheaply_is_refused_without_growing_the_caller(tmp_path: Path) -> None:
    """16 MB of empty lists (about 750 MB once parsed): refused at the frame, the caller does not grow."""
    program = (Path(__file__).parent / "data" / "hostile" / "programs" / "huge_result.py").read_text()
    script = (
        "import resource, sys\n"
        "from evaluators.cascade import evaluate\n"
        "from evaluators.jobs import EvalJob\n"
        "from evolve.config import EvaluatorConfig\n"
        "from evolve.loader import ProblemRef, builtin_problems\n"
        "ref = ProblemRef(str(builtin_problems()['function_min']), {'budget': 200, 'trials': 1})\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "r = evaluate(EvalJob(1, sys.stdin.read()), ref, EvaluatorConfig(timeout_s=30))\n"
        "grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024\n"
        "print(r.failure_kind, round(grown), r.reason)\n"
    )
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", script],
        input=program,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parent.parent,
    )
    kind, grown, reason = done.stdout.split(" ", 2)
    assert kind == "contract" and "limit" in reason, done.stdout + done.stderr
    assert int(grown) < 100, f"the caller grew by {grown} MB"


def test_a_daemon_left_by_a_candidate_does_not_outlive_its_job() -> None:
    """A grandchild in a session of its own escapes the process-group kill; the jail's cgroup does not."""
    import random as _random

    for warm in (False, True):
        marker = f"{_random.randint(1000, 9999)}.{_random.randint(1000, 9999)}"  # a command line nothing else has
        daemon = (
            "import subprocess\n"
            "def search(f, dim, budget, rng):\n"
            f"    subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
            "    return [0.0] * dim\n"
        )
        assert evaluate(daemon, warm=warm).ok
        left = [
            p
            for p in Path("/proc").glob("[0-9]*")
            if (p / "cmdline").is_file() and (p / "cmdline").read_bytes() == f"sleep\x00{marker}\x00".encode()
        ]
        assert not left, (warm, left)


@pytest.mark.skipif(not jail.probe().ok, reason="bubblewrap cannot run here")
def test_without_cgroups_the_jail_still_kills_a_daemon_before_the_next_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """No cgroup at all: a warm server's PID namespace is swept after each job, so a daemon that outlives
    its job cannot forge the next job's result."""
    from evaluators import cgroups

    monkeypatch.setattr(cgroups, "_root", lambda controller: None)
    daemon = (Path(__file__).parent / "data" / "hostile" / "programs" / "daemon_overwrite.py").read_text()
    assert evaluate(daemon, warm=True).ok
    honest = evaluate(GOOD, warm=True)
    time.sleep(0.5)
    assert honest.ok and honest.fitness == evaluate(GOOD, warm=True).fitness == evaluate(GOOD).fitness


def test_without_bubblewrap_and_pids_cgroup_every_stage_starts_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    from evaluators import cgroups, sandbox

    monkeypatch.setattr(cgroups, "_root", lambda controller: None)
    assert sandbox.Sandbox(EvaluatorConfig(isolation="none", warm_start=True)).warm is False
    assert sandbox.Sandbox(EvaluatorConfig(isolation="none", warm_start=True)).warm is False


def test_a_missing_bubblewrap_is_an_error_naming_the_opt_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail closed: no bwrap on PATH (or a probe that fails) stops the sandbox with one clear error; a failed
    probe is not remembered, so a later one that works is believed."""
    from evaluators import sandbox

    monkeypatch.setattr(jail, "_PROBED", None)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(jail.IsolationUnavailable, match="evaluator.isolation: none"):
        sandbox.Sandbox(EvaluatorConfig())
    assert sandbox.Sandbox(EvaluatorConfig(isolation="none")).cfg.isolation == "none"  # the opt-out works
    monkeypatch.undo()
    monkeypatch.setattr(jail, "_PROBED", None)
    if shutil.which("bwrap"):
        assert jail.probe().ok


@pytest.mark.skipif(not jail.probe().ok, reason="bubblewrap cannot run here")
def test_a_stopped_server_costs_the_caller_its_limit_and_no_more() -> None:
    stopper = (Path(__file__).parent / "data" / "hostile" / "programs" / "stop_server.py").read_text()
    start = time.monotonic()
    r = evaluate(stopper, EvaluatorConfig(timeout_s=2, memory_mb=512), warm=True)
    assert r.failure_kind == FailureKind.TIMEOUT and time.monotonic() - start < 2 + 8
    assert evaluate(GOOD, warm=True).ok  # the frozen server was replaced


@pytest.mark.parametrize("warm", [False, True], ids=["fresh", "warm"])
def test_a_candidate_finds_nothing_a_previous_one_left_in_tmp(warm: bool) -> None:
    """A warm server's /tmp outlives its jobs: what a job wrote there (files, folders, links) is removed
    before the next job, so a candidate can neither fill the disk for the next nor plant files for it."""
    plant = (
        "import os\n"
        "def search(f, dim, budget, rng):\n"
        "    open('/tmp/planted.txt', 'w').write('x' * 1000)\n"
        "    os.makedirs('/tmp/nest/deeper', exist_ok=True)\n"
        "    os.symlink('/tmp/nest', '/tmp/link')\n"
        "    return [0.0] * dim\n"
    )
    look = (
        "import os\n"
        "def search(f, dim, budget, rng):\n"
        "    print('SEEN', sorted(n for n in os.listdir('/tmp') if not n.startswith('job-')))\n"
        "    return [0.0] * dim\n"
    )
    assert evaluate(plant, warm=warm).ok
    seen = evaluate(look, warm=warm)
    assert seen.ok and "planted" not in seen.output and "nest" not in seen.output and "link" not in seen.output
