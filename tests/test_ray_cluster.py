"""Multi-node: a head and two worker nodes on this machine (ray.cluster_utils.Cluster). A node is
removed mid-run; the run completes and the candidates lost with it are recorded as worker_lost."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import REPO, cli_json, db, evolve_cmd

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = pytest.mark.slow  # end to end: real runs through the CLI, sandbox and Ray

ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


@pytest.mark.timeout(600)
def test_node_removed_mid_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        doomed = cluster.add_node(num_cpus=1)
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        run_dir = tmp_path / "cluster-run"
        # Slow candidates (1 s each) so that the doomed node always has one in flight.
        proc = subprocess.Popen(
            evolve_cmd(
                "run",
                "--problem",
                str(REPO / "tests" / "data" / "slow_guess"),
                "--run-dir",
                str(run_dir),
                "--max-evaluations",
                "24",
                "--ray-address",
                cluster.address,
                "--set",
                "evaluator.retries_on_worker_lost=0",
                "--set",
                "evaluator.warm_start=false",
                "--set",
                "controller.max_in_flight=2",
            ),
            cwd=REPO,
            env={**os.environ, **ENV},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if (run_dir / "archive.sqlite").exists() and db(run_dir).execute(
                "SELECT COUNT(*) FROM programs WHERE status IN ('evaluated','failed')"
            ).fetchone()[0] >= 6:
                break
        cluster.remove_node(doomed)
        out, _ = proc.communicate(timeout=400)
        assert proc.returncode == 0, out
    finally:
        cluster.shutdown()
    status = cli_json("status", str(run_dir))
    assert status["state"] == "finished" and status["evaluations"] == 24
    assert status["failures"].get("worker_lost", 0) >= 1
