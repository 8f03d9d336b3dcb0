"""LineageStore: the SQLite archive that is the source of truth of a run.

Every write is one named operation in one transaction (``propose``, ``reject``, ``submit``,
``complete``...), so a run killed at any moment (even ``kill -9``) resumes from a consistent file:
islands are rebuilt by replaying the ``events`` table in ``seq`` order, counters come from
``islands``, the RNG from ``run``. Reads are named queries too: no SQL leaves this module.
Read commands open the archive read-only (:meth:`LineageStore.open_readonly`) and run no DDL.
The schema is documented in docs/archive.md and is meant to be read with plain sqlite3/pandas.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from evolve.errors import UserError
from evolve.jsonsafe import dumps
from evolve.program import EventKind, LLMOutcome, LLMProvenance, Program, RejectionKind, RunState, Status
from evolve.schema import INDEXES, MIGRATIONS, SCHEMA, SCHEMA_VERSION
from evolve.secrets import Redactor, secret_values

ARCHIVE = "archive.sqlite"  # a run directory's archive

_JSON_COLUMNS = ("parent_ids", "metrics", "descriptors", "operator_info")
_LLM_FIELDS = tuple(LLMProvenance.model_fields)
_COLUMNS = [f for f in Program.model_fields if f not in ("id", "llm")] + [f"llm_{f}" for f in _LLM_FIELDS]
_SUMMARY_COLUMNS = (
    "id, parent_ids, operator, island, generation, status, failure_kind, rejection, duplicate_of, "
    "fitness, validated_fitness, heldout_fitness, descriptors, created_at, eval_finished_at, "
    "llm_model, llm_cost"
)
_FINISHED = "('evaluated', 'failed')"


class StoreError(UserError, RuntimeError):
    pass


def _dumps(value: Any) -> str:
    return dumps(value, sort_keys=True)


def _row_values(program: Program, redactor: Redactor) -> dict[str, Any]:
    """A program's columns, with secrets redacted from everything a candidate or a model wrote (not the code)."""
    data = program.model_dump(exclude={"id", "llm"})
    data["reason"], data["output"] = redactor.text(data["reason"]), redactor.text(data["output"])
    data["metrics"] = redactor.value(data["metrics"])
    for c in _JSON_COLUMNS:
        data[c] = _dumps(data[c])
    llm = program.llm.model_dump() if program.llm else {}
    for f in ("prompt", "response"):
        llm[f] = redactor.text(llm.get(f))
    for f in _LLM_FIELDS:
        data[f"llm_{f}"] = llm.get(f)
    return data


def _decode(row: sqlite3.Row) -> Program:
    data = dict(row)
    for c in _JSON_COLUMNS:
        data[c] = json.loads(data[c])
    llm = {f: data.pop(f"llm_{f}") for f in _LLM_FIELDS}
    data.pop("parent_id", None)
    data["llm"] = llm if llm["model"] is not None else None
    return Program.model_validate(data)


@dataclass(frozen=True)
class IslandRow:
    island: int
    evaluations: int
    since_improvement: int
    best_fitness: float | None
    best_program_id: int | None


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    kind: EventKind
    island: int
    program_id: int | None
    data: dict[str, Any]
    created_at: float


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


class LineageStore:
    def __init__(self, db: sqlite3.Connection, path: Path, readonly: bool) -> None:
        self._db, self.path, self.readonly = db, path, readonly
        # Secrets never reach the archive: the environment's secret values and key-shaped strings are
        # redacted from reasons, outputs, metrics, prompts, replies and errors (add_secrets adds more).
        self.redactor = Redactor(secret_values())
        self._lock: Any = None
        if not readonly:
            self._lock = _writer_lock(path)

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
        return cls(db, path, readonly=False)

    @classmethod
    def open(cls, path: str | Path) -> LineageStore:
        """An existing archive, for writing (run, resume)."""
        path = cls._existing(path)
        db = cls._connect(str(path), uri=False)
        try:
            store = cls(db, path, readonly=False)
        except StoreError:
            db.close()
            raise
        store._check_version()
        return store

    @classmethod
    def open_readonly(cls, path: str | Path) -> LineageStore:
        """An existing archive for reading: no DDL, no writes, also while a run is writing it."""
        path = cls._existing(path)
        db = cls._connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
        store = cls(db, path, readonly=True)
        store._check_version()
        return store

    @staticmethod
    def _existing(path: str | Path) -> Path:
        path = Path(path)
        if not path.is_file():
            raise StoreError(f"{path}: no archive here")
        return path

    @staticmethod
    def _connect(target: str, uri: bool) -> sqlite3.Connection:
        db = sqlite3.connect(target, uri=uri, isolation_level=None, timeout=30.0, check_same_thread=False)
        db.row_factory = sqlite3.Row
        if not uri:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA trusted_schema=OFF")  # a foreign archive's views and triggers cannot call functions
        return db

    def _check_version(self) -> None:
        try:
            row = self._db.execute("SELECT schema_version FROM run WHERE id = 1").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not an evolve archive ({exc})") from None
        if row is None:
            raise StoreError(f"{self.path}: archive has no run record")
        version = int(row[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: archive schema {version} was written by a newer evolve "
                f"(this one reads schema {SCHEMA_VERSION}); upgrade evolve to read it"
            )
        if version < SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: archive schema {version} is older than this evolve's "
                f"({SCHEMA_VERSION}); run `evolve migrate {self.path.parent}` to upgrade it in place"
            )

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
        self._db.close()
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self.readonly:
            raise StoreError(f"{self.path}: opened read-only")
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
    def run_info(self) -> dict[str, Any]:
        row = self._db.execute("SELECT * FROM run WHERE id = 1").fetchone()
        if row is None:
            raise StoreError(f"{self.path}: archive has no run record")
        info = dict(row)
        info["versions"] = json.loads(info.pop("versions_json"))
        info["problem"] = json.loads(info.pop("problem_json") or "{}")
        info["isolation"] = json.loads(info.pop("isolation_json") or "null")
        info["state"] = RunState(info["state"])
        return info

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
        with self._transaction() as db:
            self._insert(db, child)
            self._add_calls(db, child.id, calls)
            self._save_rng(db, rng_state)
        return child.stored_id

    def reject(self, child: Program, calls: Iterable[Any], rng_state: Mapping[str, Any] | None) -> int:
        """A child that will never be trained, with its reason (and the LLM attempts that wrote it)."""
        assert child.status == Status.REJECTED and child.rejection is not None
        return self.propose(child, calls, rng_state)

    def submit(self, program_id: int) -> None:
        """A waiting child takes an evaluation slot."""
        with self._transaction() as db:
            db.execute("UPDATE programs SET status = 'evaluating' WHERE id = ? AND status = 'proposed'", (program_id,))

    def set_fingerprint(self, program_id: int, fingerprint: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE programs SET fingerprint = ? WHERE id = ?", (fingerprint, program_id))

    def reject_duplicate_behaviour(self, program_id: int, original_id: int, fingerprint: str) -> None:
        """A child whose behaviour fingerprint matches an earlier program: never trained."""
        with self._transaction() as db:
            db.execute(
                "UPDATE programs SET status = 'rejected', rejection = ?, duplicate_of = ?, fingerprint = ?, "
                "reason = ? WHERE id = ?",
                (
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
    def get(self, program_id: int) -> Program:
        row = self._db.execute("SELECT * FROM programs WHERE id = ?", (program_id,)).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: no program with id {program_id}")
        return _decode(row)

    def get_many(self, ids: Iterable[int]) -> list[Program]:
        """The programs with these ids, in id order (unknown ids are skipped)."""
        ids = list(ids)
        out: list[Program] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            rows = self._db.execute(
                f"SELECT * FROM programs WHERE id IN ({', '.join('?' * len(chunk))}) ORDER BY id", chunk
            ).fetchall()
            out += [_decode(r) for r in rows]
        return out

    def find_by_hash(self, code_hash: str) -> int | None:
        """The first non-duplicate program with this normalized-code hash, if any."""
        row = self._db.execute(
            "SELECT id FROM programs WHERE code_hash = ? AND duplicate_of IS NULL ORDER BY id LIMIT 1", (code_hash,)
        ).fetchone()
        return int(row[0]) if row else None

    def find_by_fingerprint(self, fingerprint: str, exclude_id: int) -> int | None:
        """The first program other than ``exclude_id`` trained (or being trained) with this fingerprint."""
        # A failure of the infrastructure (a lost worker, a timeout or memory kill on a loaded machine) says
        # nothing about the behaviour: such a program is no original to be a duplicate of.
        row = self._db.execute(
            "SELECT id FROM programs WHERE fingerprint = ? AND id != ? AND status != 'rejected' "
            "AND NOT (status = 'failed' AND failure_kind IN ('timeout', 'memory', 'worker_lost')) "
            "ORDER BY id LIMIT 1",
            (fingerprint, exclude_id),
        ).fetchone()
        return int(row[0]) if row else None

    def top_ids(self, n: int, by: str = "search") -> list[int]:
        """The ids of the best programs: by search fitness, or (``by="validated"``) validated ones first
        by validated fitness, then the rest by search fitness. Narrow indexed queries: no row is sorted."""
        if by not in ("search", "validated"):
            raise ValueError(f"top: by={by!r}")
        ids: list[int] = []
        if by == "validated":
            ids = [
                r[0]
                for r in self._db.execute(
                    "SELECT id FROM programs WHERE validated_fitness IS NOT NULL "
                    "ORDER BY validated_fitness DESC, id LIMIT ?",
                    (n,),
                )
            ]
        rest = " AND validated_fitness IS NULL" if by == "validated" else ""
        ids += [
            r[0]
            for r in self._db.execute(
                f"SELECT id FROM programs WHERE fitness IS NOT NULL{rest} ORDER BY fitness DESC, id LIMIT ?",
                (n - len(ids),),
            )
        ]
        return ids

    def top(self, n: int, by: str = "search") -> list[Program]:
        ids = self.top_ids(n, by)
        order = {pid: i for i, pid in enumerate(ids)}
        return sorted(self.get_many(ids), key=lambda p: order[p.stored_id])

    def best_id(self) -> tuple[int, float] | None:
        row = self._db.execute(
            "SELECT id, fitness FROM programs WHERE fitness IS NOT NULL ORDER BY fitness DESC, id LIMIT 1"
        ).fetchone()
        return (int(row[0]), float(row[1])) if row else None

    def champion(self) -> Program | None:
        """The run's answer: the best validated program, else (nothing validated) the best by search fitness."""
        best = self.top(1, by="validated")
        return best[0] if best else None

    def needs_validation(self, ids: Iterable[int]) -> list[int]:
        """Of these programs, the ones with a search fitness and no validate result yet."""
        ids = list(ids)
        if not ids:
            return []
        rows = self._db.execute(
            f"SELECT id FROM programs WHERE id IN ({', '.join('?' * len(ids))}) "
            "AND fitness IS NOT NULL AND json_extract(metrics, '$.validate') IS NULL",
            ids,
        )
        return [int(r[0]) for r in rows]

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
        rows = self._db.execute("SELECT * FROM programs WHERE status IN ('proposed', 'evaluating') ORDER BY id")
        return [_decode(r) for r in rows]

    def counts(self) -> dict[str, dict[str, int]]:
        q = self._db.execute
        return {
            "by_status": dict(q("SELECT status, COUNT(*) FROM programs GROUP BY status").fetchall()),
            "failures": dict(
                q(
                    "SELECT failure_kind, COUNT(*) FROM programs WHERE status = 'failed' GROUP BY failure_kind"
                ).fetchall()
            ),
            "rejections": dict(
                q("SELECT rejection, COUNT(*) FROM programs WHERE status = 'rejected' GROUP BY rejection").fetchall()
            ),
            "operators": dict(q("SELECT operator, COUNT(*) FROM programs GROUP BY operator").fetchall()),
        }

    def completed_evaluations(self) -> int:
        """Children whose evaluation finished (evaluated or failed while running)."""
        return int(
            self._db.execute(
                f"SELECT COUNT(*) FROM programs WHERE status IN {_FINISHED} AND operator != 'seed'"
            ).fetchone()[0]
        )

    def submitted_children(self) -> int:
        """Children accepted for evaluation: what the evaluation budget counts."""
        return int(
            self._db.execute(
                "SELECT COUNT(*) FROM programs WHERE status IN ('evaluating', 'evaluated', "
                "'failed') AND operator != 'seed'"
            ).fetchone()[0]
        )

    def has_seed(self) -> bool:
        return self._db.execute("SELECT 1 FROM programs WHERE operator = 'seed' LIMIT 1").fetchone() is not None

    def seed_id(self) -> int:
        row = self._db.execute("SELECT MIN(id) FROM programs WHERE operator = 'seed'").fetchone()
        if row is None or row[0] is None:
            raise StoreError(f"{self.path}: no seed program")
        return int(row[0])

    def lineage(self, program_id: int) -> list[dict[str, Any]]:
        """The program and its first-parent ancestry back to the seed (program first), in one query."""
        rows = self._db.execute(
            "WITH RECURSIVE chain(id, depth) AS (SELECT ?, 0 UNION ALL "
            "SELECT p.parent_id, c.depth + 1 FROM programs p JOIN chain c ON p.id = c.id "
            "WHERE p.parent_id IS NOT NULL AND p.parent_id < p.id) "  # parents are older: a crafted cycle ends
            "SELECT p.id, p.parent_ids, p.operator, p.fitness, p.validated_fitness, p.status, p.generation, "
            "p.llm_model, p.operator_info FROM chain c JOIN programs p ON p.id = c.id ORDER BY c.depth",
            (program_id,),
        ).fetchall()
        if not rows:
            raise StoreError(f"{self.path}: no program with id {program_id}")
        return [
            {**dict(r), "parent_ids": json.loads(r["parent_ids"]), "operator_info": json.loads(r["operator_info"])}
            for r in rows
        ]

    def fitness_of(self, ids: Iterable[int]) -> dict[int, float | None]:
        ids = list(set(ids))
        out: dict[int, float | None] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            rows = self._db.execute(
                f"SELECT id, fitness FROM programs WHERE id IN ({', '.join('?' * len(chunk))})", chunk
            )
            out.update({int(r[0]): r[1] for r in rows})
        return out

    def children(self, parent_id: int, limit: int) -> list[Program]:
        """The newest children bred from this parent (as first parent)."""
        rows = self._db.execute(
            "SELECT * FROM programs WHERE parent_id = ? ORDER BY id DESC LIMIT ?", (parent_id, limit)
        ).fetchall()
        return [_decode(r) for r in rows]

    def recent_finished(self, limit: int) -> list[Program]:
        """The newest children that were rejected, evaluated or failed."""
        rows = self._db.execute(
            "SELECT * FROM programs WHERE operator != 'seed' AND status IN "
            "('rejected', 'evaluated', 'failed') ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [_decode(r) for r in rows]

    def llm_outcomes(self, program_id: int | None = None) -> list[LLMOutcome]:
        """How each finished LLM child (or just ``program_id``) turned out, with the fitness of its first
        three ancestors (the selector's reward needs the nearest one that scored)."""
        only = "" if program_id is None else f" AND c.id = {int(program_id)}"
        finished = ", ".join(f"'{s}'" for s in (Status.REJECTED, Status.EVALUATED, Status.FAILED))
        rows = self._db.execute(
            "SELECT c.id, c.llm_model, c.llm_cost, c.fitness, c.operator, c.failure_kind, "
            "length(c.code), p1.fitness, p2.fitness, p3.fitness "
            "FROM programs c LEFT JOIN programs p1 ON p1.id = c.parent_id "
            "LEFT JOIN programs p2 ON p2.id = p1.parent_id LEFT JOIN programs p3 ON p3.id = p2.parent_id "
            f"WHERE c.llm_model IS NOT NULL AND c.status IN ({finished}){only} ORDER BY c.id"
        )
        return [
            LLMOutcome(
                id=r[0],
                model=r[1],
                cost=r[2],
                fitness=r[3],
                operator=r[4],
                failure_kind=r[5],
                code_chars=r[6] or 0,
                ancestor_fitness=(r[7], r[8], r[9]),
            )
            for r in rows
        ]

    def repaired_parents(self) -> set[int]:
        rows = self._db.execute("SELECT parent_id FROM programs WHERE operator = 'llm_repair'")
        return {int(r[0]) for r in rows if r[0] is not None}

    def summaries(self, after_id: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Light rows (no code, output or prompts) of the programs after ``after_id``, in id order."""
        tail = " LIMIT ?" if limit is not None else ""
        params: tuple[Any, ...] = (after_id, limit) if limit is not None else (after_id,)
        rows = self._db.execute(f"SELECT {_SUMMARY_COLUMNS} FROM programs WHERE id > ? ORDER BY id{tail}", params)
        out = []
        for r in rows:
            d = dict(r)
            d["parent_ids"], d["descriptors"] = json.loads(d["parent_ids"]), json.loads(d["descriptors"])
            out.append(d)
        return out

    def summaries_of(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        """Light rows of these programs, in id order."""
        ids = sorted(set(ids))
        out: list[dict[str, Any]] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            rows = self._db.execute(
                f"SELECT {_SUMMARY_COLUMNS} FROM programs WHERE id IN ({', '.join('?' * len(chunk))}) ORDER BY id",
                chunk,
            )
            for r in rows:
                d = dict(r)
                d["parent_ids"], d["descriptors"] = json.loads(d["parent_ids"]), json.loads(d["descriptors"])
                out.append(d)
        return out

    def ancestors(self, ids: Iterable[int]) -> set[int]:
        """These programs and every ancestor through every parent (crossover mates included)."""
        ids = [int(i) for i in ids]
        if not ids:
            return set()
        # the starting ids as one JSON parameter: a VALUES list is capped at 500 terms, a deep path has thousands
        rows = self._db.execute(
            "WITH RECURSIVE anc(id) AS (SELECT value FROM json_each(?) UNION "
            "SELECT j.value FROM programs p JOIN anc ON p.id = anc.id, json_each(p.parent_ids) j WHERE j.value < p.id) "
            "SELECT id FROM anc",
            (json.dumps(ids),),
        )
        return {int(r[0]) for r in rows}

    def duplicates_of(self, program_id: int) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT id, rejection FROM programs WHERE duplicate_of = ? ORDER BY id", (program_id,))
        return [dict(r) for r in rows]

    def last_id(self) -> int:
        return int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM programs").fetchone()[0])

    def finished_timeline(self) -> list[tuple[int, int, str, str | None, float | None, float | None]]:
        """Every finished child in completion order: (id, island, status, failure kind, fitness, finished at)."""
        rows = self._db.execute(
            f"SELECT id, island, status, failure_kind, fitness, eval_finished_at FROM programs "
            f"WHERE operator != 'seed' AND status IN {_FINISHED} ORDER BY eval_finished_at, id"
        )
        return [tuple(r) for r in rows]

    def failure_rows(self, limit: int) -> list[dict[str, Any]]:
        """The newest failed or rejected (not duplicate) children, newest first."""
        rows = self._db.execute(
            "SELECT id, operator, llm_model, status, COALESCE(failure_kind, rejection) AS kind, rejection, "
            "stage_reached, substr(reason, 1, 400) AS reason, created_at FROM programs WHERE status = 'failed' OR "
            "(status = 'rejected' AND rejection IN ('invalid', 'operator')) ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [dict(r) for r in rows]

    def failure_counts(self) -> list[tuple[str, str, str | None, int]]:
        """(kind, operator, model, count) over every failed or rejected (not duplicate) child."""
        rows = self._db.execute(
            "SELECT COALESCE(failure_kind, rejection), operator, llm_model, COUNT(*) FROM programs WHERE "
            "status = 'failed' OR (status = 'rejected' AND rejection IN ('invalid', 'operator')) GROUP BY 1, 2, 3"
        )
        return [tuple(r) for r in rows]

    # -- events and island counters --------------------------------------------------------------
    def events(self, after_seq: int = 0) -> list[StoredEvent]:
        rows = self._db.execute("SELECT * FROM events WHERE seq > ? ORDER BY seq", (after_seq,)).fetchall()
        return [
            StoredEvent(
                r["seq"], EventKind(r["kind"]), r["island"], r["program_id"], json.loads(r["data"]), r["created_at"]
            )
            for r in rows
        ]

    def last_event_seq(self) -> int:
        return int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])

    def event_counts(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT kind, COUNT(*) FROM events GROUP BY kind").fetchall())

    def island_rows(self) -> dict[int, IslandRow]:
        return {r["island"]: IslandRow(**dict(r)) for r in self._db.execute("SELECT * FROM islands ORDER BY island")}

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

    def llm_calls(self, program_id: int | None = None) -> list[dict[str, Any]]:
        if program_id is None:
            rows = self._db.execute("SELECT * FROM llm_calls ORDER BY id").fetchall()
        else:
            rows = self._db.execute(
                "SELECT * FROM llm_calls WHERE program_id = ? ORDER BY id", (program_id,)
            ).fetchall()
        return [dict(r) for r in rows]

    def llm_spend(self) -> dict[str, dict[str, Any]]:
        """Per model: calls, failed attempts, tokens, cost (None when no price is known), mean latency."""
        rows = self._db.execute(
            "SELECT model, COUNT(*) AS attempts, SUM(error IS NOT NULL) AS errors, "
            "COALESCE(SUM(tokens_in), 0) AS tokens_in, COALESCE(SUM(tokens_out), 0) AS tokens_out, "
            "SUM(cost) AS cost, AVG(CASE WHEN error IS NULL THEN latency_s END) AS mean_latency_s "
            "FROM llm_calls GROUP BY model ORDER BY model"
        ).fetchall()
        return {r["model"]: {k: r[k] for k in r.keys() if k != "model"} for r in rows}

    def llm_totals(self) -> tuple[int, float]:
        """Tokens (in + out) and known cost of every LLM call of the run."""
        row = self._db.execute(
            "SELECT COALESCE(SUM(tokens_in), 0) + COALESCE(SUM(tokens_out), 0), COALESCE(SUM(cost), 0) FROM llm_calls"
        ).fetchone()
        return int(row[0]), float(row[1])

    def llm_spend_timeline(self) -> list[tuple[float, float, int]]:
        """(started at, cumulative cost, cumulative tokens) after each LLM attempt, in time order."""
        rows = self._db.execute(
            "SELECT started_at, SUM(COALESCE(cost, 0)) OVER w, SUM(COALESCE(tokens_in, 0) + COALESCE(tokens_out, 0)) "
            "OVER w FROM llm_calls WINDOW w AS (ORDER BY started_at, id ROWS UNBOUNDED PRECEDING) "
            "ORDER BY started_at, id"
        )
        return [tuple(r) for r in rows]

    def insights(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._db.execute("SELECT * FROM insights ORDER BY id").fetchall()]

    def insight_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM insights").fetchone()[0])

    def latest_insight(self) -> str | None:
        row = self._db.execute("SELECT text FROM insights ORDER BY id DESC LIMIT 1").fetchone()
        return str(row[0]) if row else None

    def integrity_ok(self) -> bool:
        return bool(self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")
