"""The same run on a local Ray runtime that evolve starts and stops itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import cli_json, db, run_cli

pytestmark = pytest.mark.slow  # end to end: real runs through the CLI, sandbox and Ray


def test_run_on_local_ray(tmp_path: Path) -> None:
    run_dir = tmp_path / "ray-run"
    run_cli("run", "--run-dir", str(run_dir), "--max-evaluations", "16", "--set", "evaluator.backend=ray",
            env={"RAY_USAGE_STATS_ENABLED": "0"})
    status = cli_json("status", str(run_dir))
    assert status["state"] == "finished" and status["evaluations"] == 16
    conn = db(run_dir)
    assert conn.execute("SELECT COUNT(*) FROM programs WHERE status='evaluated'").fetchone()[0] >= 2


def test_dead_ray_address_fails_fast(tmp_path: Path) -> None:
    proc = run_cli("run", "--run-dir", str(tmp_path / "r"), "--ray-address", "127.0.0.1:1", "--max-evaluations", "2",
                   check=False, timeout=120)
    assert proc.returncode == 2 and "127.0.0.1:1" in proc.stderr and "Traceback" not in proc.stderr


def test_llm_keys_stay_out_of_ray_workers(tmp_path: Path) -> None:
    """The local Ray runtime is started without the controller's secrets, so its workers never hold them."""
    run_dir = tmp_path / "probe"
    run_cli("run", "--problem", "tests/data/env_probe", "--run-dir", str(run_dir), "--max-evaluations", "2",
            "--set", "evaluator.backend=ray", env={"RAY_USAGE_STATS_ENABLED": "0", "PROBE_API_KEY": "sk-probe-secret"})
    rows = db(run_dir).execute("SELECT metrics FROM programs WHERE status='evaluated'").fetchall()
    assert rows
    for (metrics,) in rows:
        seen = json.loads(metrics)["main"]["key_seen"]
        assert seen == {"os_environ": False, "proc_self": False, "proc_parent": False}
