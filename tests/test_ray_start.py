"""A Ray cluster started the way an operator starts one (`ray start --head`, `ray start --address` per worker
node), with and without token authentication, joined by `evolve run --ray-address`.

Ray resolves a node's address to one the network can reach (never loopback, unless multi-node is off), so
each cluster lives in a network namespace of its own (`unshare`): only loopback there, nothing leaves it,
and a PID namespace, so that every process the test started dies with it. tests/data/ray_cluster.sh runs it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, db

pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # end to end: real Ray nodes, real runs through the CLI and sandbox

SCRIPT = REPO / "tests" / "data" / "ray_cluster.sh"
NAMESPACES = ["unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--mount-proc"]


def _cluster(out: Path, auth: str, **env: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("unshare") is None or subprocess.run([*NAMESPACES, "true"], check=False).returncode != 0:
        pytest.skip("no user, network and PID namespaces here")
    proc = subprocess.run(
        [*NAMESPACES, "env", *(f"{k}={v}" for k, v in env.items()), "bash", str(SCRIPT), str(out), auth],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _status(run_dir: Path) -> dict[str, object]:
    out = subprocess.run(
        [str(REPO / ".venv/bin/evolve"), "status", str(run_dir), "--json"], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


def test_a_run_on_a_ray_start_cluster_survives_losing_a_worker_node(tmp_path: Path) -> None:
    _cluster(tmp_path, "disabled", KILL_AFTER="6", BUDGET="24")
    assert "evolve run exited 0" in (tmp_path / "run.err").read_text()
    status = _status(tmp_path / "run")
    assert status["state"] == "finished" and status["evaluations"] == 24
    failures = status["failures"]
    assert isinstance(failures, dict) and failures.get("worker_lost", 0) >= 1  # what the dead node was running
    lost = db(tmp_path / "run").execute("SELECT reason FROM programs WHERE failure_kind = 'worker_lost'").fetchall()
    assert all("died" in r[0] for r in lost)


def test_token_auth_joins_with_the_token_and_says_what_to_set_without_it(tmp_path: Path) -> None:
    # The client exported nothing but has the cluster's token where Ray's clients read it: token mode is taken.
    _cluster(tmp_path / "with", "token", BUDGET="6", CLIENT_AUTH="unset")
    assert _status(tmp_path / "with" / "run")["evaluations"] == 6
    # Neither the mode nor the token: one line that says what to set, exit code 2, none of Ray's retry pages.
    _cluster(tmp_path / "without", "token", BUDGET="6", CLIENT_AUTH="unset", CLIENT_TOKEN="none")
    err = (tmp_path / "without" / "run.err").read_text()
    assert "evolve run exited 2" in err and "Traceback" not in err and "gcs_client" not in err, err
    line = next(x for x in err.splitlines() if x.startswith("error:"))
    assert "uses token authentication" in line and "RAY_AUTH_MODE=token" in line and "~/.ray/auth_token" in line
