"""The engine driven as a user drives it: `evolve run` and the read commands, checked on the archive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, cli_json, db, run_cli

pytestmark = pytest.mark.slow  # end to end: real runs through the CLI


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "r1"
    run_cli(
        "run",
        str(REPO / "configs" / "function_min.yaml"),
        "--run-dir",
        str(run_dir),
        "--max-evaluations",
        "120",
        "--set",
        "islands.migration_interval=10",
        "--set",
        "islands.stagnation_evaluations=15",
    )
    return run_dir


def test_run_improves_on_the_seed_and_fills_the_archive(finished_run: Path) -> None:
    conn = db(finished_run)
    seed_fitness = conn.execute("SELECT fitness FROM programs WHERE operator = 'seed'").fetchone()[0]
    best = conn.execute("SELECT MAX(fitness) FROM programs").fetchone()[0]
    assert best > seed_fitness
    status = cli_json("status", str(finished_run))
    assert status["state"] == "finished"
    assert status["evaluations"] == 120
    assert status["best"]["fitness"] == best
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_lineage_is_consistent(finished_run: Path) -> None:
    conn = db(finished_run)
    ids = {r[0] for r in conn.execute("SELECT id FROM programs")}
    for pid, parents, op, gen in conn.execute("SELECT id, parent_ids, operator, generation FROM programs"):
        parents = json.loads(parents)
        assert set(parents) <= ids, f"program {pid} names a missing parent"
        assert all(p < pid for p in parents)
        assert (op == "seed") == (not parents)
        if parents:
            parent_gens = [
                conn.execute("SELECT generation FROM programs WHERE id=?", (p,)).fetchone()[0] for p in parents
            ]
            assert gen == 1 + max(parent_gens)
    assert len(conn.execute("SELECT DISTINCT operator FROM programs WHERE operator != 'seed'").fetchall()) == 2


def test_rejected_and_duplicate_children_are_recorded_with_reasons(finished_run: Path) -> None:
    conn = db(finished_run)
    rejected = conn.execute(
        "SELECT id, reason, duplicate_of, code_hash, fingerprint, rejection FROM programs WHERE status='rejected'"
    ).fetchall()
    assert rejected, "a 120-evaluation run always proposes some duplicates"
    assert all(r["reason"] and r["rejection"] for r in rejected)
    dups = [r for r in rejected if r["rejection"] == "duplicate_code"]
    behaviour = [r for r in rejected if r["rejection"] == "duplicate_behaviour"]
    assert dups and behaviour, "both kinds of duplicates occur in a function_min run"
    for r in dups:
        original = conn.execute(
            "SELECT id, code_hash, status FROM programs WHERE id=?", (r["duplicate_of"],)
        ).fetchone()
        assert original["code_hash"] == r["code_hash"] and original["id"] < r["id"]
        assert f"duplicate of program {original['id']}" == r["reason"]
    for r in behaviour:  # same behaviour on the probe, other code; never trained
        original = conn.execute(
            "SELECT fingerprint, code_hash, status FROM programs WHERE id=?", (r["duplicate_of"],)
        ).fetchone()
        assert original["fingerprint"] == r["fingerprint"] and original["code_hash"] != r["code_hash"]
        assert original["status"] != "rejected"
    # each normalized program is evaluated at most once
    evaluated = conn.execute(
        "SELECT code_hash, COUNT(*) FROM programs WHERE status IN ('evaluated','failed') GROUP BY 1 HAVING COUNT(*)>1"
    ).fetchall()
    assert evaluated == []
    failed = conn.execute("SELECT failure_kind, reason FROM programs WHERE status='failed'").fetchall()
    assert all(f["failure_kind"] and f["reason"] for f in failed)


def test_migration_and_reset_events_are_written(finished_run: Path) -> None:
    conn = db(finished_run)
    kinds = {r[0]: r[1] for r in conn.execute("SELECT kind, COUNT(*) FROM events GROUP BY kind")}
    assert kinds.get("migration", 0) >= 1
    assert kinds.get("island_reset", 0) >= 1
    assert kinds.get("elite_added", 0) >= 3
    for ev in conn.execute("SELECT * FROM events WHERE kind='migration'"):
        data = json.loads(ev["data"])
        assert data["from_island"] != ev["island"]
        assert conn.execute("SELECT status FROM programs WHERE id=?", (ev["program_id"],)).fetchone()[0] == "evaluated"


def test_read_commands_json_parse_and_agree(finished_run: Path, tmp_path: Path) -> None:
    top = cli_json("top", str(finished_run), "-n", "3")
    assert len(top) == 3 and top[0]["fitness"] >= top[1]["fitness"] >= top[2]["fitness"]
    best = top[0]["id"]
    shown = cli_json("show", str(finished_run), str(best))
    assert shown["id"] == best and "def search" in shown["code"]
    lin = cli_json("lineage", str(finished_run), str(best))
    assert lin[0]["operator"] == "seed" and lin[-1]["id"] == best
    assert all(step["id"] == nxt["parent_ids"][0] for step, nxt in zip(lin, lin[1:]))
    assert len(lin) - 1 <= shown["generation"]  # generation counts the longest path, crossovers included
    if not any(step["mates"] for step in lin):
        assert len(lin) - 1 == shown["generation"]
    diff = cli_json("diff", str(finished_run), str(lin[0]["id"]), str(best))
    assert diff["diff"].startswith("--- program")
    exported = cli_json("export", str(finished_run), str(best), "-o", str(tmp_path / "best.py"))
    assert (tmp_path / "best.py").read_text() == shown["code"] and exported["id"] == best
    problems = cli_json("problems")
    assert "function_min" in {p["name"] for p in problems}


def test_read_commands_human_output(finished_run: Path) -> None:
    out = run_cli("lineage", str(finished_run), "2").stdout
    assert "seed" in out and "#2" in out
    assert "evaluations" in run_cli("status", str(finished_run)).stdout


def test_bad_ids_and_dirs_are_exit_2(finished_run: Path, tmp_path: Path) -> None:
    proc = run_cli("show", str(finished_run), "99999", check=False)
    assert proc.returncode == 2 and "99999" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("status", str(tmp_path / "nowhere"), check=False)
    assert proc.returncode == 2 and "nowhere" in proc.stderr
    proc = run_cli("run", "--run-dir", str(finished_run), check=False)
    assert proc.returncode == 2 and "resume" in proc.stderr


def test_same_seed_same_run(tmp_path: Path) -> None:
    """With one evaluation in flight the run is a pure function of its seed."""
    codes = []
    for name in ("a", "b"):
        run_cli(
            "run",
            "--run-dir",
            str(tmp_path / name),
            "--max-evaluations",
            "25",
            "--set",
            "controller.max_in_flight=1",
            "--set",
            "seed=7",
        )
        codes.append([r[0] for r in db(tmp_path / name).execute("SELECT code FROM programs ORDER BY id")])
    assert codes[0] == codes[1]


def test_random_search_mode_breeds_only_from_the_seed(tmp_path: Path) -> None:
    run_cli(
        "run",
        "--run-dir",
        str(tmp_path / "rs"),
        "--max-evaluations",
        "20",
        "--set",
        "islands.selection.random_search=true",
    )
    conn = db(tmp_path / "rs")
    seed = conn.execute("SELECT id FROM programs WHERE operator='seed'").fetchone()[0]
    parents = {r[0] for r in conn.execute("SELECT parent_ids FROM programs WHERE operator != 'seed'")}
    assert parents == {json.dumps([seed])}


def test_heldout_scores_the_best_without_touching_fitness(finished_run: Path) -> None:
    before = {r[0]: r[1] for r in db(finished_run).execute("SELECT id, fitness FROM programs")}
    rows = cli_json("heldout", str(finished_run), "-n", "2")
    assert len(rows) == 2
    for row in rows:
        assert "fitness" in row["heldout"] and row["heldout"]["fitness"] < 0
        shown = cli_json("show", str(finished_run), str(row["id"]))
        assert shown["metrics"]["heldout"]["fitness"] == row["heldout"]["fitness"] == shown["heldout_fitness"]
    after = {r[0]: r[1] for r in db(finished_run).execute("SELECT id, fitness FROM programs")}
    assert after == before
    top = cli_json("top", str(finished_run), "-n", "2")
    assert [p["heldout_fitness"] for p in top] == [r["heldout"]["fitness"] for r in rows]
    assert "held-out" in run_cli("top", str(finished_run), "--heldout").stdout
    by_search = cli_json("top", str(finished_run), "-n", "3", "--by", "search")
    fitness = [p["fitness"] for p in by_search]
    assert fitness == sorted(fitness, reverse=True)
    for command in ("top", "heldout"):  # one check of --by for both, typer's own: one line, exit code 2
        bad = run_cli(command, str(finished_run), "--by", "fitness", check=False)
        assert bad.returncode == 2 and "'fitness' is not one of" in bad.stderr and "Traceback" not in bad.stderr


def test_heldout_reports_contract_errors_and_nan_instead_of_crashing(tmp_path: Path) -> None:
    """A held-out score that raises a contract error or comes out NaN is a failure row, not a traceback."""
    run_dir = tmp_path / "fragile"
    run_cli(
        "run",
        "--problem",
        str(REPO / "tests" / "data" / "fragile_heldout"),
        "--run-dir",
        str(run_dir),
        "--max-evaluations",
        "30",
    )
    rows = cli_json("heldout", str(run_dir), "-n", "6")
    kinds = {r["heldout"].get("failure_kind") for r in rows}
    assert {"contract", "nan"} <= kinds, rows
    proc = run_cli("heldout", str(run_dir), "-n", "6")
    assert "Traceback" not in proc.stderr and "failed (contract)" in proc.stdout


def test_a_run_that_stops_on_an_error_is_marked_failed(tmp_path: Path) -> None:
    run_dir = tmp_path / "bad"
    broken = tmp_path / "broken_seed"
    broken.mkdir()
    (broken / "initial_program.py").write_text("def search(f, dim, budget, rng):\n    raise ValueError('no')\n")
    (broken / "evaluator.py").write_text(
        "def evaluate(path):\n    import runpy\n    runpy.run_path(path)['search'](None, 1, 1, None)\n"
    )
    proc = run_cli("run", "--problem", str(broken), "--run-dir", str(run_dir), "--max-evaluations", "5", check=False)
    assert proc.returncode == 2 and "seed program" in proc.stderr and "Traceback" not in proc.stderr
    status = cli_json("status", str(run_dir))
    assert status["state"] == "failed" and "seed program" in status["stop_reason"]


def test_lineage_of_a_very_deep_program_prints_without_recursion(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    from synthetic_archive import make

    make(tmp_path / "deep", 10_000, recent=3).close()
    steps = cli_json("lineage", str(tmp_path / "deep"), "10000")
    assert len(steps) > 1000 and steps[0]["operator"] == "seed"  # past Python's recursion limit
    out = run_cli("lineage", str(tmp_path / "deep"), "10000").stdout
    assert out.count("\n") == len(steps) + 1


def test_read_commands_leave_the_archive_untouched(finished_run: Path) -> None:
    archive = finished_run / "archive.sqlite"
    before = archive.stat().st_mtime_ns, archive.read_bytes()
    for args in (("status",), ("top",), ("show", "1"), ("lineage", "1"), ("diff", "1", "2")):
        run_cli(*args[:1], str(finished_run), *args[1:])
    assert (archive.stat().st_mtime_ns, archive.read_bytes()) == before


def test_what_a_candidate_or_model_wrote_reaches_the_terminal_without_control_sequences(tmp_path: Path) -> None:
    """`evolve show` prints output, reasons and replies: OSC 52 (writes the clipboard), CSI 2J (clears the
    screen) and a bell are shown as replacement characters, not sent to the terminal."""
    from evolve.program import LLMProvenance, Program, Status
    from evolve.store import LineageStore

    hostile = "before\x1b]52;c;aGVsbG8=\x07 \x1b[2J\rafter\x9b"
    store = LineageStore.create(tmp_path / "archive.sqlite")
    store.init_run(json.dumps({}), 0, "function_min", "1", {"python": "3"})
    pid = store.add_seed(
        Program(
            code=f"# {hostile}\nx = 0\n",
            operator="seed",
            island=0,
            code_hash="s",
            status=Status.FAILED,
            reason=hostile,
            output=hostile,
            llm=LLMProvenance(model="m", prompt=json.dumps([{"role": "user", "content": hostile}]), response=hostile),
        )
    )
    store.set_state(__import__("evolve.program").program.RunState.FAILED, hostile)
    store.close()
    for command in (["show", str(tmp_path), str(pid), "--prompt"], ["status", str(tmp_path)]):
        proc = run_cli(*command)
        assert "\x1b]52" not in proc.stdout and "\x1b[2J" not in proc.stdout and "\x07" not in proc.stdout
        assert "\x9b" not in proc.stdout and "\r" not in proc.stdout
        assert "after" in proc.stdout


def test_a_run_fails_closed_without_bubblewrap_and_says_which_opt_out_exists(tmp_path: Path) -> None:
    """No bwrap to be found: one line naming evaluator.isolation: none, exit 2, nothing created. With the
    opt-out the run goes on and its archive says candidates ran without isolation."""
    run_dir = tmp_path / "r"
    env = {"PATH": "/nonexistent"}
    proc = run_cli("run", "--run-dir", str(run_dir), "--max-evaluations", "4", check=False, env=env)
    assert proc.returncode == 2 and "evaluator.isolation: none" in proc.stderr and "Traceback" not in proc.stderr
    assert not run_dir.exists()
    run_cli("run", "--run-dir", str(run_dir), "--max-evaluations", "4", "--set", "evaluator.isolation=none", env=env)
    status = cli_json("status", str(run_dir))
    assert status["isolation"]["mode"] == "none" and "no isolation" in status["isolation"]["summary"]
    text = run_cli("status", str(run_dir)).stdout
    assert "no isolation" in text


def test_a_run_without_a_terminal_logs_plain_progress_lines(tmp_path: Path) -> None:
    proc = run_cli(
        "run",
        "--run-dir",
        str(tmp_path / "run"),
        "--max-evaluations",
        "40",
        "--set",
        "progress.log_every_evaluations=10",
        "--set",
        "progress.log_every_seconds=0",
    )
    lines = [line for line in proc.stderr.splitlines() if line.startswith("progress [")]
    counts = [int(line.split(" | ")[1].split("/")[0]) for line in lines]
    assert len(lines) >= 5 and counts[0] <= 1 and counts == sorted(counts) and counts[-1] == 40, proc.stderr
    assert all(b - a >= 10 for a, b in zip(counts[1:-2], counts[2:-1], strict=True)), counts  # no line in between
    assert "40/40 evaluations | best " in lines[-1] and "\x1b" not in proc.stderr  # plain text, no live table


def test_a_plateau_stops_the_run_and_a_resume_keeps_its_count(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    plateau = ["--set", "budget.stop_after_no_improvement=8", "--set", "controller.max_in_flight=1"]
    run_cli("run", "--run-dir", str(run_dir), "--max-evaluations", "400", *plateau)
    status = cli_json("status", str(run_dir))
    assert status["state"] == "finished" and "plateau" in status["stop_reason"], status
    assert 8 <= status["evaluations"] < 400
    finished = [
        r[0]
        for r in db(run_dir).execute(
            "SELECT fitness FROM programs WHERE operator != 'seed' AND status IN ('evaluated', 'failed') "
            "ORDER BY eval_finished_at"
        )
    ]
    best_before = max(
        db(run_dir).execute("SELECT fitness FROM programs WHERE operator = 'seed'").fetchone()[0],
        *[f for f in finished[:-8] if f is not None],
    )
    assert all(f is None or f <= best_before for f in finished[-8:])  # the last 8 brought nothing new
    assert finished[-9] is not None and finished[-9] == best_before  # and the one before them did
    run_cli("resume", str(run_dir), "--max-evaluations", "500")  # the plateau is rebuilt from the archive
    again = cli_json("status", str(run_dir))
    assert again["evaluations"] == status["evaluations"] and "plateau" in again["stop_reason"]
