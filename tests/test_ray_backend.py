"""The same run on a local Ray runtime that evolve starts and stops itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import cli_json, db, run_cli

pytestmark = pytest.mark.slow  # end to end: real runs through the CLI, sandbox and Ray


def test_run_on_local_ray(tmp_path: Path) -> None:
    run_dir = tmp_path / "ray-run"
    run_cli(
        "run",
        "--run-dir",
        str(run_dir),
        "--max-evaluations",
        "16",
        "--set",
        "evaluator.backend=ray",
        env={"RAY_USAGE_STATS_ENABLED": "0"},
    )
    status = cli_json("status", str(run_dir))
    assert status["state"] == "finished" and status["evaluations"] == 16
    conn = db(run_dir)
    assert conn.execute("SELECT COUNT(*) FROM programs WHERE status='evaluated'").fetchone()[0] >= 2


def test_dead_ray_address_fails_fast(tmp_path: Path) -> None:
    proc = run_cli(
        "run",
        "--run-dir",
        str(tmp_path / "r"),
        "--ray-address",
        "127.0.0.1:1",
        "--max-evaluations",
        "2",
        check=False,
        timeout=120,
    )
    assert proc.returncode == 2 and "127.0.0.1:1" in proc.stderr and "Traceback" not in proc.stderr


def test_llm_keys_stay_out_of_ray_workers(tmp_path: Path) -> None:
    """The local Ray runtime is started without the controller's secrets, so its workers never hold them."""
    run_dir = tmp_path / "probe"
    run_cli(
        "run",
        "--problem",
        "tests/data/env_probe",
        "--run-dir",
        str(run_dir),
        "--max-evaluations",
        "2",
        "--set",
        "evaluator.backend=ray",
        env={"RAY_USAGE_STATS_ENABLED": "0", "PROBE_API_KEY": "sk-probe-secret"},
    )
    rows = db(run_dir).execute("SELECT metrics FROM programs WHERE status='evaluated'").fetchall()
    assert rows
    for (metrics,) in rows:
        seen = json.loads(metrics)["main"]["key_seen"]
        assert seen == {"os_environ": False, "proc_self": False, "proc_parent": False}


def test_the_local_runtime_listens_on_loopback_only_with_token_auth() -> None:
    """Started by evolve, the runtime binds 127.0.0.1 (not the machine's outward address) and requires a
    token: nobody else on the network can run code through it."""
    import subprocess
    import sys

    probe = (
        "import os, sys\n"
        "from evaluators.backend import RayBackend\n"
        "from evolve.config import EvaluatorConfig\n"
        "from evolve.loader import ProblemRef, builtin_problems\n"
        "backend = RayBackend(ProblemRef(str(builtin_problems()['function_min']), {}), EvaluatorConfig(), 1)\n"
        "import ray\n"
        "from ray._private.authentication.authentication_utils import is_token_auth_enabled\n"
        "node = ray._private.worker.global_worker.node\n"
        "port = int(node.gcs_address.rsplit(':', 1)[1])\n"
        "listening = set()\n"
        "rows = open('/proc/net/tcp').read().splitlines()[1:] + open('/proc/net/tcp6').read().splitlines()[1:]\n"
        "for line in rows:\n"
        "    local, state = line.split()[1], line.split()[3]\n"
        "    if state == '0A' and int(local.rsplit(':', 1)[1], 16) == port:\n"
        "        listening.add(local.rsplit(':', 1)[0])\n"
        "print(node.node_ip_address, node.gcs_address, is_token_auth_enabled(), sorted(listening))\n"
        "backend.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=Path(__file__).parent.parent,
        env={**__import__("os").environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )
    ip, gcs, token, listening = done.stdout.strip().splitlines()[-1].split(" ", 3)
    assert ip == "127.0.0.1" and gcs.startswith("127.0.0.1:"), done.stdout + done.stderr
    assert token == "True"
    loopback = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}
    addresses = set(eval(listening))  # /proc/net/tcp's notation: 127.0.0.1, ::ffff:127.0.0.1, ::1
    assert addresses and addresses <= loopback, listening
