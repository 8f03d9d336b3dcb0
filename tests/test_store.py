"""LineageStore: each named operation moves a program through its statuses in one transaction; read-only
opening writes nothing; the schema version is checked on open; a v1 archive migrates."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from evolve.archive import ArchiveReader
from evolve.program import EventKind, FailureKind, LLMProvenance, Program, RejectionKind, RunState, Status
from evolve.schema import SCHEMA_VERSION
from evolve.store import IslandRow, LineageStore, StoreError
from islands.archipelago import IslandEvent

DATA = Path(__file__).parent / "data"


def _store(tmp_path: Path) -> LineageStore:
    store = LineageStore.create(tmp_path / "archive.sqlite")
    store.init_run("{}", 0, "toy", "1", {"python": "3"})
    return store


def _child(parent: int, **kw: object) -> Program:
    return Program(
        code=f"x = {kw.pop('n', 1)}",
        parent_ids=[parent],
        operator="ast_mutate",
        island=0,
        generation=1,
        code_hash=str(kw.pop("h", "h")),
        **kw,
    )  # type: ignore[arg-type]


def test_a_child_goes_proposed_evaluating_evaluated(tmp_path: Path) -> None:
    store = _store(tmp_path)
    seed = Program(code="x = 0", operator="seed", island=0, status=Status.EVALUATING, code_hash="s")
    sid = store.add_seed(seed)
    child = _child(sid, status=Status.PROPOSED)
    cid = store.propose(child, [], {"state": 1})
    assert store.get(cid).status == Status.PROPOSED and store.pending()[-1].id == cid
    assert store.submitted_children() == 0  # proposed children do not count against the budget yet
    store.submit(cid)
    assert store.get(cid).status == Status.EVALUATING and store.submitted_children() == 1
    child.status, child.fitness, child.descriptors = Status.EVALUATED, 0.5, {"d": 1.0}
    store.complete(
        child,
        [IslandEvent(EventKind.ELITE_ADDED, 0, cid, {"fitness": 0.5, "descriptors": {"d": 1.0}})],
        [IslandRow(0, 1, 0, 0.5, cid)],
    )
    got = store.get(cid)
    assert (got.status, got.fitness, got.descriptors) == (Status.EVALUATED, 0.5, {"d": 1.0})
    assert store.completed_evaluations() == 1 and store.pending() == [store.get(sid)]
    assert [e.kind for e in store.events()] == [EventKind.ELITE_ADDED]
    assert store.island_rows()[0].best_program_id == cid
    assert store.load_rng_state() == {"state": 1}


def test_rejections_duplicates_and_fingerprints(tmp_path: Path) -> None:
    store = _store(tmp_path)
    sid = store.add_seed(Program(code="x = 0", operator="seed", island=0, status=Status.EVALUATING, code_hash="s"))
    a = store.propose(_child(sid, h="ha", status=Status.EVALUATING), [], None)
    assert store.find_by_hash("ha") == a
    dup = _child(
        sid,
        h="ha",
        status=Status.REJECTED,
        rejection=RejectionKind.DUPLICATE_CODE,
        duplicate_of=a,
        reason=f"duplicate of program {a}",
    )
    store.reject(dup, [], None)
    assert store.find_by_hash("ha") == a  # duplicates never become the original
    store.set_fingerprint(a, "fp")
    b = store.propose(_child(sid, n=2, h="hb", status=Status.EVALUATING), [], None)
    assert store.find_by_fingerprint("fp", exclude_id=b) == a and store.find_by_fingerprint("fp", exclude_id=a) is None
    store.reject_duplicate_behaviour(b, a, "fp")
    got = store.get(b)
    assert got.status == Status.REJECTED and got.rejection == RejectionKind.DUPLICATE_BEHAVIOUR
    assert got.duplicate_of == a
    assert store.counts()["rejections"] == {"duplicate_code": 1, "duplicate_behaviour": 1}
    assert store.submitted_children() == 1
    with pytest.raises(AssertionError):
        store.reject(_child(sid, status=Status.PROPOSED), [], None)  # reject() takes rejected children only


def test_validation_and_heldout_results_leave_search_fitness_alone(tmp_path: Path) -> None:
    store = _store(tmp_path)
    sid = store.add_seed(
        Program(code="x = 0", operator="seed", island=0, status=Status.EVALUATED, fitness=1.0, code_hash="s")
    )
    other = store.propose(_child(sid, status=Status.EVALUATED, fitness=2.0), [], None)
    assert store.needs_validation([sid, other]) == [sid, other] and store.top_unvalidated(1) == [other]
    store.record_stage(other, "validate", {"fitness": 0.7})
    store.record_stage(sid, "validate", {"failure_kind": "timeout", "reason": "too slow"})
    store.record_stage(sid, "heldout", {"fitness": 0.9})
    assert store.needs_validation([sid, other]) == []
    assert store.get(other).fitness == 2.0 and store.get(other).validated_fitness == 0.7
    assert store.get(sid).validated_fitness is None and store.get(sid).metrics["validate"]["failure_kind"] == "timeout"
    assert store.get(sid).heldout_fitness == 0.9
    assert [p.id for p in store.top(2, by="validated")] == [other, sid]  # validated first
    assert store.champion() is not None and store.champion().id == other  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        store.record_stage(sid, "select", {})


def test_llm_provenance_round_trips_through_the_columns(tmp_path: Path) -> None:
    store = _store(tmp_path)
    sid = store.add_seed(Program(code="x = 0", operator="seed", island=0, code_hash="s"))
    llm = LLMProvenance(model="m", prompt="[]", response="r", tokens_in=3, tokens_out=4, cost=0.01, latency_s=0.5)
    cid = store.propose(_child(sid, llm=llm, status=Status.PROPOSED), [], None)
    assert store.get(cid).llm == llm
    row = (
        sqlite3.connect(store.path).execute("SELECT llm_model, llm_cost FROM programs WHERE id = ?", (cid,)).fetchone()
    )
    assert row == ("m", 0.01)  # plain columns for sqlite3/pandas readers


def test_lineage_is_one_query_and_survives_deep_chains(tmp_path: Path) -> None:
    store = _store(tmp_path)
    parent = store.add_seed(Program(code="x = 0", operator="seed", island=0, code_hash="s"))
    for i in range(3000):  # far deeper than Python's recursion limit
        parent = store.propose(_child(parent, n=i, h=f"h{i}", status=Status.EVALUATED, fitness=float(i)), [], None)
    chain = store.lineage(parent)
    assert len(chain) == 3001 and chain[0]["id"] == parent and chain[-1]["operator"] == "seed"
    with pytest.raises(StoreError, match="no program with id 999999"):
        store.lineage(999999)
    # the web view asks for the ancestors of a whole deep path at once (thousands of starting ids)
    path = [row["id"] for row in chain]
    assert store.ancestors(path) == set(path) and store.ancestors(path[:1]) == set(path)
    assert len(store.summaries_of(store.ancestors(path))) == 3001


def test_read_only_opening_writes_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.add_seed(Program(code="x = 0", operator="seed", island=0, code_hash="s"))
    store.close()
    reader = ArchiveReader.open(tmp_path / "archive.sqlite")
    assert reader.get(1).is_seed and not hasattr(reader, "set_state")  # a reader has no operations at all
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader._db.execute("CREATE TABLE t (x)")
    assert reader.run_info()["state"] == RunState.RUNNING


def test_failure_kinds_from_the_sandbox_are_parsed_defensively() -> None:
    assert FailureKind.parse("timeout") == FailureKind.TIMEOUT
    assert FailureKind.parse("'; DROP TABLE programs; --") == FailureKind.CRASH


def test_schema_version_is_checked_on_open(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.close()
    db = sqlite3.connect(tmp_path / "archive.sqlite")
    db.execute("UPDATE run SET schema_version = ?", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    for opener in (LineageStore.open, ArchiveReader.open):
        with pytest.raises(StoreError, match="newer evolve"):
            opener(tmp_path / "archive.sqlite")
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="not an evolve archive"):
        ArchiveReader.open(tmp_path / "junk.sqlite")


def test_a_v1_archive_is_refused_then_migrated_in_place(tmp_path: Path) -> None:
    """tests/data/archive_v1.sqlite was written by evolve's first schema (a 30-evaluation function_min run)."""
    path = tmp_path / "archive.sqlite"
    shutil.copy(DATA / "archive_v1.sqlite", path)
    before = sqlite3.connect(path).execute("SELECT id, code, fitness, status FROM programs ORDER BY id").fetchall()
    with pytest.raises(StoreError, match="evolve migrate"):
        ArchiveReader.open(path)
    assert LineageStore.migrate(path) == 1
    store = ArchiveReader.open(path)
    after = [(p.id, p.code, p.fitness, str(p.status)) for p in store.get_many(r[0] for r in before)]
    assert after == [tuple(r) for r in before]
    rejected = [p for p in store.get_many(r[0] for r in before) if p.status == Status.REJECTED]
    assert rejected and all(p.rejection is not None for p in rejected)
    assert store.lineage(before[-1][0])[-1]["operator"] == "seed"
    assert LineageStore.migrate(path) == SCHEMA_VERSION  # a second migration is a no-op


def test_one_writer_per_archive(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(StoreError, match="another evolve process"):
        LineageStore.open(tmp_path / "archive.sqlite")
    ArchiveReader.open(tmp_path / "archive.sqlite").close()  # readers are welcome
    store.close()
    LineageStore.open(tmp_path / "archive.sqlite").close()


def test_infrastructure_failures_do_not_make_behaviour_duplicates(tmp_path: Path) -> None:
    store = _store(tmp_path)
    sid = store.add_seed(Program(code="x = 0", operator="seed", island=0, code_hash="s"))
    lost = store.propose(_child(sid, h="a", status=Status.FAILED, failure_kind=FailureKind.WORKER_LOST), [], None)
    store.set_fingerprint(lost, "fp")
    assert store.find_by_fingerprint("fp", exclude_id=999) is None  # a lost worker says nothing of the behaviour
    crashed = store.propose(_child(sid, n=2, h="b", status=Status.FAILED, failure_kind=FailureKind.CRASH), [], None)
    store.set_fingerprint(crashed, "fp")
    assert store.find_by_fingerprint("fp", exclude_id=999) == crashed


def test_lineage_queries_stop_on_a_crafted_cycle(tmp_path: Path) -> None:
    store = _store(tmp_path)
    a = store.add_seed(Program(code="x = 0", operator="seed", island=0, code_hash="s"))
    b = store.propose(_child(a, status=Status.EVALUATED, fitness=1.0), [], None)
    store.close()
    db = sqlite3.connect(tmp_path / "archive.sqlite")
    db.execute("UPDATE programs SET parent_id = ?, parent_ids = ? WHERE id = ?", (b, f"[{b}]", a))
    db.commit()
    reader = ArchiveReader.open(tmp_path / "archive.sqlite")
    assert [r["id"] for r in reader.lineage(b)] == [b, a] and reader.ancestors([b]) == {a, b}


def test_an_interrupted_transaction_still_leaves_a_state(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store._db.execute("BEGIN IMMEDIATE")  # what a second Ctrl-C inside a transaction leaves behind
    store.set_state(RunState.INTERRUPTED)
    assert ArchiveReader.open(tmp_path / "archive.sqlite").run_info()["state"] == RunState.INTERRUPTED


def test_non_finite_metrics_are_stored_as_standard_json(tmp_path: Path) -> None:
    """A diverged candidate reports inf/nan losses: the archive must stay readable by SQLite's JSON functions
    (the store's own validation queries use them, and so do users' queries)."""
    store = _store(tmp_path)
    sid = store.add_seed(Program(code="x = 0", operator="seed", island=0, code_hash="s"))
    diverged = _child(
        sid,
        status=Status.EVALUATED,
        fitness=2.0,
        h="d",
        metrics={
            "select": {
                "tasks": {
                    "a": {"val_loss": float("inf"), "drift": float("-inf")},
                    "b": {"val_loss": float("nan"), "score": 0.25},
                }
            }
        },
    )
    did = store.propose(diverged, [], None)
    store.record_stage(did, "heldout", {"fitness": 0.3, "metrics": {"val_loss": float("nan")}})
    raw = sqlite3.connect(tmp_path / "archive.sqlite")
    assert raw.execute("SELECT COUNT(*) FROM programs WHERE json_valid(metrics) = 0").fetchone()[0] == 0
    assert (
        raw.execute(
            "SELECT json_extract(metrics, '$.select.tasks.b.score') FROM programs WHERE id = ?", (did,)
        ).fetchone()[0]
        == 0.25
    )
    assert store.top_unvalidated(5) == [did] and store.needs_validation([did]) == [did]
    tasks = store.get(did).metrics["select"]["tasks"]
    assert tasks["a"] == {"val_loss": None, "drift": None} and tasks["b"]["val_loss"] is None


SECRETS = {
    "gemini query key": "litellm.APIError: 400 for url https://generativelanguage.googleapis.com/v1/models?key=AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW",
    "openai": "Incorrect API key provided: sk-proj-abcdefghijklmnopqrstuv",
    "hugging face": "token hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345 is invalid",
    "github": "ghp_0123456789abcdefghijABCDEFGHIJklmnop and github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
    "slack": "xoxb-123456789012-abcdefghijkl",
    "aws": "AKIAIOSFODNN7EXAMPLE with a key",
    "pem": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
    "query token": "https://host/api?access_token=abcdef123456&x=1",
}
LEAKS = [
    "AIzaSyA1b2C3",
    "sk-proj-abc",
    "hf_AbCdEf",
    "ghp_0123",
    "github_pat_11",
    "xoxb-1234",
    "AKIAIOSFODNN7",
    "b3BlbnNzaC1r",
    "abcdef123456",
    "hunter2-env-secret",
]


def test_secrets_are_redacted_wherever_text_enters_the_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reasons, outputs, metrics, LLM prompts/replies/errors and insights: key-shaped strings and the values
    of secret-named environment variables never reach the file (the code itself is kept as written)."""
    from evolve.llm.client import CallRecord

    monkeypatch.setenv("EVOLVE_TEST_API_KEY", "hunter2-env-secret")
    store = _store(tmp_path)
    text = "\n".join([*SECRETS.values(), "the env said hunter2-env-secret"])
    sid = store.add_seed(Program(code="x = 0", operator="seed", island=0, status=Status.EVALUATING, code_hash="s"))
    child = _child(
        sid,
        status=Status.FAILED,
        reason=text,
        output=text,
        metrics={"stage": {"error": text}},
        llm=LLMProvenance(model="m", prompt=text, response=text),
    )
    cid = store.propose(
        child,
        [
            CallRecord(
                purpose="llm_diff",
                model="m",
                attempt=0,
                messages=[{"role": "user", "content": text}],
                response=text,
                error=text,
                latency_s=0.1,
                started_at=0.0,
            )
        ],
        None,
    )
    store.record_stage(cid, "validate", {"failure_kind": "crash", "reason": text})
    store.add_insight([], 1, "m", text)
    store.set_state(RunState.FAILED, text)
    store.close()
    raw = (tmp_path / "archive.sqlite").read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.glob("archive.sqlite-*")
    )
    for leak in LEAKS:
        assert leak.encode() not in raw, leak
    assert b"[REDACTED]" in raw and b"x = 1" in raw


def test_foreign_archives_open_with_trusted_schema_off(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert store._db.execute("PRAGMA trusted_schema").fetchone()[0] == 0
    store.close()
    reader = ArchiveReader.open(tmp_path / "archive.sqlite")
    assert reader._db.execute("PRAGMA trusted_schema").fetchone()[0] == 0


def test_the_writer_lock_is_never_opened_through_a_symlink(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.close()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "archive.sqlite.lock").unlink()
    (tmp_path / "archive.sqlite.lock").symlink_to(victim)
    with pytest.raises(StoreError, match="symlink"):
        LineageStore.open(tmp_path / "archive.sqlite")
    assert victim.read_text() == "precious"


def test_a_program_has_a_stored_id_only_once_the_store_holds_it(tmp_path: Path) -> None:
    store = _store(tmp_path)
    draft = Program(code="x = 0", operator="seed", island=0, code_hash="s")
    with pytest.raises(RuntimeError, match="never stored"):
        _ = draft.stored_id
    sid = store.add_seed(draft)
    assert draft.stored_id == sid == store.get(sid).stored_id
