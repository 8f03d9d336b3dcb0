"""LineageStore: the engine's writer of a run's archive, the SQLite file that is the source of truth of a run.

Every write is one named operation in one transaction (``propose``, ``reject``, ``submit``,
``complete``...), so a run killed at any moment (even ``kill -9``) resumes from a consistent file:
islands are rebuilt by replaying the ``events`` table in ``seq`` order, counters come from
``islands``, the RNG from ``run``. A LineageStore is an :class:`~evolve.archive.ArchiveReader` (the
queries the read side uses too) with the operations and the engine's own queries on top; the read
side opens an ArchiveReader and never imports this module. No SQL leaves these two modules.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from evolve.archive import (
    ARCHIVE,
    BEFORE_TRAINING,
    FINISHED_STATUSES,
    JSON_COLUMNS,
    LLM_FIELDS,
    NOT_SEED,
    TRAINED,
    ArchiveReader,
    Best,
    IslandRow,
    StoredEvent,
    StoreError,
    decode_program,
    in_chunks,
    sql_set,
)
from evolve.jsonsafe import dumps
from evolve.program import SEED_OPERATOR, FailureKind, Program, RejectionKind, RunState, Status
from evolve.schema import INDEXES, MIGRATIONS, SCHEMA, SCHEMA_VERSION
from evolve.secrets import Redactor, secret_values

__all__ = ["ARCHIVE", "Best", "IslandRow", "LineageStore", "StoreError", "StoredEvent"]


# A failure of the infrastructure (a lost worker, a timeout or memory kill on a loaded machine) says
# nothing about a program's behaviour.
_INFRASTRUCTURE = sql_set(FailureKind.TIMEOUT, FailureKind.MEMORY, FailureKind.WORKER_LOST)


def _dumps(value: Any) -> str:
    return dumps(value, sort_keys=True)


def _row_values(program: Program, redactor: Redactor) -> dict[str, Any]:
    """A program's columns, with secrets redacted from everything a candidate or a model wrote (not the code)."""
    data = program.model_dump(exclude={"id", "llm"})
    data["reason"], data["output"] = redactor.text(data["reason"]), redactor.text(data["output"])
    data["metrics"] = redactor.value(data["metrics"])
    for c in JSON_COLUMNS:
        data[c] = _dumps(data[c])
    llm = program.llm.model_dump() if program.llm else {}
    for f in ("prompt", "response"):
        llm[f] = redactor.text(llm.get(f))
    for f in LLM_FIELDS:
        data[f"llm_{f}"] = llm.get(f)
    return data


def _writer_lock(path: Path) -> Any:
    """One writer per archive: two processes running one run would spend its budget twice and tangle its
    islands. Held (an advisory flock) as long as the store is open; readers take none."""
    import fcntl

    # never through a symlink planted where the lock goes (it would be created or truncated elsewhere)
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise StoreError(
            f"{lock_path}: cannot open the writer lock ({exc.strerror}; a symlink there is refused)"
        ) from None
    handle = os.fdopen(fd, "r+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        owner = handle.read().strip()
        handle.close()
        raise StoreError(
            f"{path.parent}: is being written by another evolve process"
            f"{f' (pid {owner})' if owner else ''}; stop it first"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


class LineageStore(ArchiveReader):
    """The one writer of an archive (an advisory lock says so to any other process)."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        super().__init__(db, path)
        # Secrets never reach the archive: the environment's secret values and key-shaped strings are
        # redacted from reasons, outputs, metrics, prompts, replies and errors (add_secrets adds more).
        self.redactor = Redactor(secret_values())
        self._lock: Any = _writer_lock(path)

    # -- opening -----------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path) -> LineageStore:
        """A new, empty archive (the caller checked that none exists)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = _writer_lock(path)
        db = cls._connect(str(path), uri=False)
        with db:
            db.executescript(SCHEMA + INDEXES)
        lock.close()
        return cls(db, path)

    @classmethod
    def open(cls, path: str | Path) -> LineageStore:
        """An existing archive, for writing (run, resume)."""
        path = cls._existing(path)
        db = cls._connect(str(path), uri=False)
        try:
            store = cls(db, path)
        except StoreError:
            db.close()
            raise
        store._check_version()
        return store

    @classmethod
    def migrate(cls, path: str | Path) -> int:
        """Upgrade an older archive in place (one transaction); returns the version it had."""
        path = cls._existing(path)
        db = cls._connect(str(path), uri=False)
        try:
            version = int(db.execute("SELECT schema_version FROM run WHERE id = 1").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreError(f"{path}: archive schema {version} is newer than this evolve's ({SCHEMA_VERSION})")
            if version < SCHEMA_VERSION:
                db.execute("BEGIN IMMEDIATE")
                try:
                    script = "".join(MIGRATIONS[v] for v in range(version, SCHEMA_VERSION)) + INDEXES
                    for statement in script.split(";"):
                        if statement.strip():
                            db.execute(statement)
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            return version
        finally:
            db.close()

    def close(self) -> None:
        super().close()
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- run: operations -----------------------------------------------------------------------------
    def init_run(
        self,
        config_json: str,
        seed: int,
        problem_name: str,
        problem_version: str,
        versions: dict[str, str],
        problem: dict[str, Any] | None = None,
    ) -> None:
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO run VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, NULL, ?, NULL)",
                (
                    SCHEMA_VERSION,
                    now,
                    now,
                    config_json,
                    seed,
                    problem_name,
                    problem_version,
                    _dumps(versions),
                    RunState.RUNNING.value,
                    _dumps(problem or {}),
                ),
            )

    def set_isolation(self, isolation: dict[str, Any]) -> None:
        """The isolation candidates run under from now on (each start or resume records it)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE run SET isolation_json = ?, updated_at = ? WHERE id = 1", (_dumps(isolation), time.time())
            )

    def add_secrets(self, values: Iterable[str]) -> None:
        """More values to redact (e.g. the LLM keys the config names)."""
        self.redactor.add(values)

    def set_state(self, state: RunState, stop_reason: str | None = None) -> None:
        stop_reason = self.redactor.text(stop_reason)
        if self._db.in_transaction:  # a second Ctrl-C landed inside a transaction: drop that half-write
            self._db.execute("ROLLBACK")
        with self._transaction() as db:
            db.execute(
                "UPDATE run SET state = ?, stop_reason = ?, updated_at = ? WHERE id = 1",
                (state.value, stop_reason, time.time()),
            )

    def set_config(self, config_json: str) -> None:
        """Replace the stored config (e.g. a budget raised by `evolve resume --max-evaluations`)."""
        with self._transaction() as db:
            db.execute("UPDATE run SET config_json = ?, updated_at = ? WHERE id = 1", (config_json, time.time()))

    # -- run: queries --------------------------------------------------------------------------------
    def load_rng_state(self) -> dict[str, Any] | None:
        row = self._db.execute("SELECT rng_state_json FROM run WHERE id = 1").fetchone()
        return json.loads(row[0]) if row and row[0] else None

    # -- programs: operations ------------------------------------------------------------------------
    def _insert(self, db: sqlite3.Connection, program: Program) -> int:
        program.created_at = program.created_at or time.time()
        values = _row_values(program, self.redactor)
        values["parent_id"] = program.parent_ids[0] if program.parent_ids else None
        cols = list(values)
        cur = db.execute(
            f"INSERT INTO programs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", [values[c] for c in cols]
        )
        program.id = int(cur.lastrowid or 0)
        return program.id

    def _update(self, db: sqlite3.Connection, program: Program) -> None:
        values = _row_values(program, self.redactor)
        values.pop("created_at")
        db.execute(
            f"UPDATE programs SET {', '.join(f'{c} = ?' for c in values)} WHERE id = ?", [*values.values(), program.id]
        )

    def _save_rng(self, db: sqlite3.Connection, rng_state: Mapping[str, Any] | None) -> None:
        if rng_state is not None:
            db.execute(
                "UPDATE run SET rng_state_json = ?, updated_at = ? WHERE id = 1", (_dumps(rng_state), time.time())
            )

    def add_seed(self, program: Program) -> int:
        with self._transaction() as db:
            return self._insert(db, program)

    def propose(self, child: Program, calls: Iterable[Any], rng_state: Mapping[str, Any] | None) -> int:
        """An accepted child (``proposed``, or ``evaluating`` when it goes straight to a slot)."""
        return self._add_child(child, calls, rng_state)

    def reject(self, child: Program, calls: Iterable[Any], rng_state: Mapping[str, Any] | None) -> int:
        """A child that will never be trained, with its reason (and the LLM attempts that wrote it)."""
        assert child.status == Status.REJECTED and child.rejection is not None
        return self._add_child(child, calls, rng_state)

    def _add_child(self, child: Program, calls: Iterable[Any], rng_state: Mapping[str, Any] | None) -> int:
        with self._transaction() as db:
            self._insert(db, child)
            self._add_calls(db, child.id, calls)
            self._save_rng(db, rng_state)
        return child.stored_id

    def submit(self, program_id: int) -> None:
        """A waiting child takes an evaluation slot."""
        with self._transaction() as db:
            db.execute(
                "UPDATE programs SET status = ? WHERE id = ? AND status = ?",
                (Status.EVALUATING.value, program_id, Status.PROPOSED.value),
            )

    def set_fingerprint(self, program_id: int, fingerprint: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE programs SET fingerprint = ? WHERE id = ?", (fingerprint, program_id))

    def reject_duplicate_behaviour(self, program_id: int, original_id: int, fingerprint: str) -> None:
        """A child whose behaviour fingerprint matches an earlier program: never trained."""
        with self._transaction() as db:
            db.execute(
                "UPDATE programs SET status = ?, rejection = ?, duplicate_of = ?, fingerprint = ?, "
                "reason = ? WHERE id = ?",
                (
                    Status.REJECTED.value,
                    RejectionKind.DUPLICATE_BEHAVIOUR.value,
                    original_id,
                    fingerprint,
                    f"behaves like program {original_id} (same fingerprint)",
                    program_id,
                ),
            )

    def complete(self, program: Program, events: Iterable[Any], islands: Iterable[IslandRow]) -> None:
        """An evaluation finished: the program's result, the island events it caused, the counters."""
        with self._transaction() as db:
            self._update(db, program)
            now = time.time()
            for ev in events:
                db.execute(
                    "INSERT INTO events (kind, island, program_id, data, created_at) VALUES (?, ?, ?, ?, ?)",
                    (ev.kind.value, ev.island, ev.program_id, _dumps(ev.data), now),
                )
            for row in islands:
                db.execute(
                    "INSERT OR REPLACE INTO islands VALUES (?, ?, ?, ?, ?)",
                    (row.island, row.evaluations, row.since_improvement, row.best_fitness, row.best_program_id),
                )

    def record_stage(self, program_id: int, stage: str, result: dict[str, Any]) -> None:
        """Attach a validate or held-out result (``fitness`` or ``failure_kind``) to a program's metrics;
        its search fitness is untouched."""
        column = {"validate": "validated_fitness", "heldout": "heldout_fitness", "confirm": None}.get(stage, "?")
        if column == "?":
            raise ValueError(f"record_stage: {stage!r} is neither validate, confirm nor heldout")
        with self._transaction() as db:
            row = db.execute("SELECT metrics FROM programs WHERE id = ?", (program_id,)).fetchone()
            metrics = json.loads(row[0])
            metrics[stage] = self.redactor.value(result)
            if column is None:  # the champion's confirmation lives in its metrics only
                db.execute("UPDATE programs SET metrics = ? WHERE id = ?", (_dumps(metrics), program_id))
            else:
                db.execute(
                    f"UPDATE programs SET metrics = ?, {column} = ? WHERE id = ?",
                    (_dumps(metrics), result.get("fitness"), program_id),
                )

    # -- programs: queries ---------------------------------------------------------------------------
    def find_by_hash(self, code_hash: str) -> int | None:
        """The first non-duplicate program with this normalized-code hash, if any."""
        row = self._db.execute(
            "SELECT id FROM programs WHERE code_hash = ? AND duplicate_of IS NULL ORDER BY id LIMIT 1", (code_hash,)
        ).fetchone()
        return int(row[0]) if row else None

    def find_by_fingerprint(self, fingerprint: str, exclude_id: int) -> int | None:
        """The first program other than ``exclude_id`` trained (or being trained) with this fingerprint."""
        # a program that failed for the infrastructure is no original to be a duplicate of
        row = self._db.execute(
            f"SELECT id FROM programs WHERE fingerprint = ? AND id != ? AND status != '{Status.REJECTED}' "
            f"AND NOT (status = '{Status.FAILED}' AND failure_kind IN {_INFRASTRUCTURE}) ORDER BY id LIMIT 1",
            (fingerprint, exclude_id),
        ).fetchone()
        return int(row[0]) if row else None

    def needs_validation(self, ids: Iterable[int]) -> list[int]:
        """Of these programs, the ones with a search fitness and no validate result yet."""
        out: list[int] = []
        for marks, chunk in in_chunks(ids):
            rows = self._db.execute(
                f"SELECT id FROM programs WHERE id IN ({marks}) "
                "AND fitness IS NOT NULL AND json_extract(metrics, '$.validate') IS NULL",
                chunk,
            )
            out += [int(r[0]) for r in rows]
        return out

    def top_unvalidated(self, n: int) -> list[int]:
        """The best ``n`` by search fitness that have no validate result yet."""
        rows = self._db.execute(
            "SELECT id FROM (SELECT id, metrics FROM programs WHERE fitness IS NOT NULL "
            "ORDER BY fitness DESC, id LIMIT ?) WHERE json_extract(metrics, '$.validate') IS NULL",
            (n,),
        ).fetchall()
        return [int(r[0]) for r in rows]

    def pending(self) -> list[Program]:
        """Programs accepted for evaluation whose result never landed (the run was killed)."""
        waiting = sql_set(Status.PROPOSED, Status.EVALUATING)
        rows = self._db.execute(f"SELECT * FROM programs WHERE status IN {waiting} ORDER BY id")
        return [decode_program(r) for r in rows]

    def submitted_children(self) -> int:
        """Children accepted for evaluation and not known to have failed before training: what the evaluation
        budget has spent or reserved (a running child that fails its probe gives its share back)."""
        return int(
            self._db.execute(
                f"SELECT COUNT(*) FROM programs WHERE status IN {sql_set(Status.EVALUATING, *FINISHED_STATUSES)} "
                f"AND NOT {BEFORE_TRAINING} AND {NOT_SEED}"
            ).fetchone()[0]
        )

    def evaluations_since_best(self) -> int:
        """Children trained after the first program to reach the best search fitness (all of them when
        none has one yet): the plateau a resumed run continues from (a child that failed its probe never
        trained, and the live count skips it too)."""
        best = self._db.execute(
            "SELECT eval_finished_at FROM programs WHERE fitness IS NOT NULL "
            "ORDER BY fitness DESC, eval_finished_at, id LIMIT 1"
        ).fetchone()
        after = "" if best is None or best[0] is None else " AND eval_finished_at > ?"
        return int(
            self._db.execute(
                f"SELECT COUNT(*) FROM programs WHERE {TRAINED} AND {NOT_SEED}{after}",
                () if not after else (best[0],),
            ).fetchone()[0]
        )

    def has_seed(self) -> bool:
        return self._db.execute(f"SELECT 1 FROM programs WHERE NOT ({NOT_SEED}) LIMIT 1").fetchone() is not None

    def seed_id(self) -> int:
        row = self._db.execute("SELECT MIN(id) FROM programs WHERE operator = ?", (SEED_OPERATOR,)).fetchone()
        if row is None or row[0] is None:
            raise StoreError(f"{self.path}: no seed program")
        return int(row[0])

    def recent_finished(self, limit: int) -> list[Program]:
        """The newest children that were rejected, evaluated or failed."""
        rows = self._db.execute(
            f"SELECT * FROM programs WHERE {NOT_SEED} AND status IN "
            f"{sql_set(Status.REJECTED, *FINISHED_STATUSES)} ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [decode_program(r) for r in rows]

    def by_operator(self, operator: str) -> list[Program]:
        """Every program an operator wrote, in the order they were written."""
        rows = self._db.execute("SELECT * FROM programs WHERE operator = ? ORDER BY id", (operator,))
        return [decode_program(r) for r in rows]

    def repaired_parents(self) -> set[int]:
        rows = self._db.execute(
            "SELECT parent_id FROM programs WHERE operator = 'llm_repair'"
        )  # an LLM operator's name
        return {int(r[0]) for r in rows if r[0] is not None}

    # -- LLM calls and insights --------------------------------------------------------------------
    def _add_calls(self, db: sqlite3.Connection, program_id: int | None, calls: Iterable[Any]) -> None:
        """Store each attempt (evolve.llm.client.CallRecord) of the calls behind one program/insight."""
        r = self.redactor
        for c in calls:
            db.execute(
                "INSERT INTO llm_calls (program_id, purpose, model, attempt, prompt, response, tokens_in, "
                "tokens_out, cost, latency_s, error, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    program_id,
                    c.purpose,
                    c.model,
                    c.attempt,
                    json.dumps(r.value(c.messages)),
                    r.text(c.response),
                    c.tokens_in,
                    c.tokens_out,
                    c.cost,
                    c.latency_s,
                    r.text(c.error),
                    c.started_at,
                ),
            )

    def add_insight(self, calls: Iterable[Any], evaluations: int, model: str, text: str) -> None:
        """An insights call: its attempts, and the note when it produced one."""
        with self._transaction() as db:
            self._add_calls(db, None, calls)
            if text:
                db.execute(
                    "INSERT INTO insights (created_at, evaluations, model, text) VALUES (?, ?, ?, ?)",
                    (time.time(), evaluations, model, self.redactor.text(text)),
                )

    def latest_insight(self) -> str | None:
        row = self._db.execute("SELECT text FROM insights ORDER BY id DESC LIMIT 1").fetchone()
        return str(row[0]) if row else None
