"""kill -9 at random moments (spread over the budget by progress, not by the clock), then `evolve resume`:
nothing completed is lost, the budget is met."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from conftest import REPO, db, evolve_cmd, run_cli

pytestmark = pytest.mark.slow  # end to end: real runs through the CLI, sandbox and Ray

BUDGET = 70


def _created(run_dir: Path) -> bool:
    """The run's first transaction is in the archive (a kill can land before it)."""
    try:
        return db(run_dir).execute("SELECT COUNT(*) FROM run").fetchone()[0] == 1
    except sqlite3.OperationalError:
        return False


def _count(run_dir: Path) -> int:
    try:
        return db(run_dir).execute("SELECT COUNT(*) FROM programs").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _finished(run_dir: Path) -> int:
    try:
        return (
            db(run_dir)
            .execute("SELECT COUNT(*) FROM programs WHERE status IN ('evaluated', 'failed') AND operator != 'seed'")
            .fetchone()[0]
        )
    except sqlite3.OperationalError:
        return 0


def _wait_for_finished(run_dir: Path, n: int, proc: subprocess.Popen[bytes], limit_s: float = 180) -> None:
    deadline = time.monotonic() + limit_s
    while n and _finished(run_dir) < n:
        assert proc.poll() is None and time.monotonic() < deadline, f"the run stopped short of {n} evaluations"
        time.sleep(0.05)


def _snapshot(run_dir: Path) -> dict[int, tuple[str, float | None, str]]:
    conn = db(run_dir)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = conn.execute("SELECT id, status, fitness, code FROM programs WHERE status IN ('evaluated','failed')")
    snap = {r["id"]: (r["status"], r["fitness"], r["code"]) for r in rows}
    conn.close()
    return snap


def _start(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(evolve_cmd(*args), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_sigkill_ten_times_then_resume_to_budget(tmp_path: Path) -> None:
    rng = random.Random(1234)
    run_dir = tmp_path / "run"
    proc = _start(
        [
            "run",
            "--run-dir",
            str(run_dir),
            "--max-evaluations",
            str(BUDGET),
            "--set",
            "islands.migration_interval=10",
            "--set",
            "islands.stagnation_evaluations=15",
        ]
    )
    seen: dict[int, tuple[str, float | None, str]] = {}
    kills = 0
    while kills < 10:
        # Kill k lands after k/10 of the budget (less a margin) has finished, at a random moment after that:
        # the first one possibly before the archive exists, every one mid-run however fast the machine is.
        _wait_for_finished(run_dir, kills * (BUDGET - 10) // 10, proc)
        time.sleep(rng.uniform(0.0, 0.5 if kills else 1.5))
        assert proc.poll() is None, f"the run ended before kill {kills + 1}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        if not (run_dir / "archive.sqlite").exists() or not _created(run_dir):
            proc = _start(["run", "--run-dir", str(run_dir), "--max-evaluations", str(BUDGET)])
            continue
        snap = _snapshot(run_dir)
        for pid, row in seen.items():
            assert snap.get(pid) == row, f"completed evaluation of program {pid} was lost or changed"
        seen = snap
        proc = _start(["resume", str(run_dir)])
    assert kills == 10
    proc.wait(timeout=300)
    assert proc.returncode == 0
    final = _snapshot(run_dir)
    for pid, row in seen.items():
        assert final[pid] == row
    conn = db(run_dir)
    children = conn.execute(
        "SELECT COUNT(*) FROM programs WHERE operator != 'seed' AND status IN ('evaluated','failed') "
        "AND COALESCE(stage_reached, '') != 'fingerprint'"  # a child that failed its probe never trained
    ).fetchone()[0]
    assert children == BUDGET
    assert conn.execute("SELECT COUNT(*) FROM programs WHERE status IN ('evaluating','proposed')").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM programs WHERE operator='seed'").fetchone()[0] == 1
    ids = [r[0] for r in conn.execute("SELECT id FROM programs ORDER BY id")]
    assert len(ids) == len(set(ids))
    assert run_cli("status", str(run_dir), "--json").returncode == 0


@pytest.mark.parametrize("polish", [False, True])
def test_resumed_run_continues_the_same_sequence(tmp_path: Path, polish: bool) -> None:
    """With one evaluation in flight, kill + resume yields exactly the uninterrupted run (with polish: its
    CMA-ES sessions are rebuilt from the archive's trials)."""
    common = ["--max-evaluations", "30", "--set", "controller.max_in_flight=1", "--set", "seed=3"]
    common += ["--set", f"operators.polish.enabled={str(polish).lower()}"]
    run_cli("run", "--run-dir", str(tmp_path / "straight"), *common)
    proc = _start(["run", "--run-dir", str(tmp_path / "killed"), *common])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill mid-run: after some children exist, before the end
        time.sleep(0.1)
        if (tmp_path / "killed" / "archive.sqlite").exists() and _count(tmp_path / "killed") >= 10:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run_cli("resume", str(tmp_path / "killed"))
    seq = [
        [(r[0], r[1]) for r in db(tmp_path / name).execute("SELECT code, status FROM programs ORDER BY id")]
        for name in ("straight", "killed")
    ]
    assert seq[0] == seq[1]
    if polish:  # trials were written on both sides of the kill
        ops = [r[0] for r in db(tmp_path / "killed").execute("SELECT operator FROM programs ORDER BY id")]
        assert "polish" in ops[:10] and "polish" in ops[12:]


def test_ctrl_c_stops_cleanly_and_resume_finishes(tmp_path: Path) -> None:
    run_dir = tmp_path / "int"
    proc = _start(["run", "--run-dir", str(run_dir), "--max-evaluations", "400"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if (run_dir / "archive.sqlite").exists() and _count(run_dir) >= 10:
            break
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    conn = db(run_dir)
    assert conn.execute("SELECT state FROM run").fetchone()[0] == "interrupted"
    assert conn.execute("SELECT COUNT(*) FROM programs WHERE status = 'evaluating'").fetchone()[0] == 0
    done = conn.execute("SELECT COUNT(*) FROM programs WHERE status IN ('evaluated','failed')").fetchone()[0]
    assert 0 < done < 400
    run_cli("resume", str(run_dir), "--max-evaluations", str(done + 20))
    assert db(run_dir).execute("SELECT state FROM run").fetchone()[0] == "finished"
    status = json.loads(run_cli("status", str(run_dir), "--json").stdout)
    assert status["budget"] == status["evaluations"] == done + 20  # the raised budget is stored...
    run_cli("resume", str(run_dir))  # ...so a plain resume keeps it instead of reverting to 400
    status = json.loads(run_cli("status", str(run_dir), "--json").stdout)
    assert status["budget"] == status["evaluations"] == done + 20 and status["state"] == "finished"


def test_a_second_ctrl_c_stops_at_once_even_mid_evaluation(tmp_path: Path) -> None:
    """The first Ctrl-C lets the evaluation in flight finish; the second stops it: the run exits in seconds,
    marked interrupted, its jail gone, the program left pending for resume."""
    folder = tmp_path / "sleepy"
    folder.mkdir()
    source = (REPO / "tests" / "data" / "slow_guess" / "problem.py").read_text()
    (folder / "problem.py").write_text(source.replace("time.sleep(1.0)", "time.sleep(300)").replace("=10)", "=600)"))
    run_dir = tmp_path / "run"
    proc = _start(["run", "--problem", str(folder), "--run-dir", str(run_dir), "--max-evaluations", "5"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the seed is being evaluated (a 300 s stage)
        time.sleep(0.2)
        if _created(run_dir) and db(run_dir).execute("SELECT COUNT(*) FROM programs").fetchone()[0]:
            break
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    time.sleep(1)
    assert proc.poll() is None  # the first one waits for the evaluation
    proc.send_signal(signal.SIGINT)
    start = time.monotonic()
    proc.wait(timeout=60)
    assert time.monotonic() - start < 15
    assert db(run_dir).execute("SELECT state FROM run").fetchone()[0] == "interrupted"
    assert db(run_dir).execute("SELECT status FROM programs WHERE id = 1").fetchone()[0] == "evaluating"
    jailed = subprocess.run(["pgrep", "-f", str(folder)], capture_output=True, text=True).stdout.split()
    assert not jailed, jailed
