"""LineageStore: the SQLite archive that is the source of truth of a run.

Every state change the controller makes is one transaction here, so a run killed at any moment
(even ``kill -9``) resumes from a consistent file: islands are rebuilt by replaying the
``events`` table in ``seq`` order, counters come from ``islands``, the RNG from ``run``.
The schema is documented in docs/archive.md and is meant to be read with plain sqlite3/pandas.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from evolve.program import Program, Status

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS run (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    schema_version INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    config_json TEXT NOT NULL,
    seed INTEGER NOT NULL,
    problem_name TEXT NOT NULL,
    problem_version TEXT NOT NULL,
    versions_json TEXT NOT NULL,
    rng_state_json TEXT,
    state TEXT NOT NULL          -- running | finished | interrupted
);
CREATE TABLE IF NOT EXISTS programs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code TEXT NOT NULL,
    parent_ids TEXT NOT NULL,    -- JSON list of program ids
    operator TEXT NOT NULL,
    island INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    failure_kind TEXT,
    duplicate_of INTEGER REFERENCES programs(id),
    stage_reached TEXT,
    metrics TEXT NOT NULL,       -- JSON object
    fitness REAL,
    descriptors TEXT NOT NULL,   -- JSON object
    code_hash TEXT NOT NULL,
    output TEXT NOT NULL,
    created_at REAL NOT NULL,
    eval_started_at REAL,
    eval_finished_at REAL,
    eval_seconds REAL,
    llm_model TEXT,
    llm_prompt TEXT,
    llm_response TEXT,
    llm_tokens_in INTEGER,
    llm_tokens_out INTEGER,
    llm_cost REAL,
    llm_latency_s REAL,
    operator_info TEXT NOT NULL  -- JSON object
);
CREATE INDEX IF NOT EXISTS programs_hash ON programs(code_hash);
CREATE INDEX IF NOT EXISTS programs_status ON programs(status);
CREATE INDEX IF NOT EXISTS programs_fitness ON programs(fitness);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,          -- elite_added | elite_replaced | migration | island_reset
    island INTEGER NOT NULL,
    program_id INTEGER REFERENCES programs(id),
    data TEXT NOT NULL,          -- JSON object
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS llm_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    program_id INTEGER REFERENCES programs(id),  -- the child it wrote (NULL for insights)
    purpose TEXT NOT NULL,       -- llm_diff | llm_rewrite | llm_crossover | llm_repair | insights
    model TEXT NOT NULL,
    attempt INTEGER NOT NULL,    -- 0 for the first try, then one row per retry
    prompt TEXT NOT NULL,        -- JSON list of chat messages
    response TEXT,
    tokens_in INTEGER,
    tokens_out INTEGER,
    cost REAL,                   -- USD; NULL where the price is unknown
    latency_s REAL NOT NULL,
    error TEXT,                  -- NULL when the attempt got a reply
    started_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS llm_calls_program ON llm_calls(program_id);
CREATE TABLE IF NOT EXISTS insights (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    evaluations INTEGER NOT NULL, -- completed evaluations when it was written
    model TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS islands (
    island INTEGER PRIMARY KEY,
    evaluations INTEGER NOT NULL,
    since_improvement INTEGER NOT NULL,
    best_fitness REAL,
    best_program_id INTEGER
);
"""

_JSON_COLUMNS = {"parent_ids", "metrics", "descriptors", "operator_info"}
_PROGRAM_COLUMNS = [f for f in Program.model_fields if f != "id"]


class StoreError(RuntimeError):
    pass


def _dumps(value: Any) -> str:
    # allow_nan: metrics may legitimately hold inf/nan (a diverged run); SQLite keeps the text.
    return json.dumps(value, sort_keys=True, default=str)


class LineageStore:
    def __init__(self, path: str | Path, *, create: bool = False) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise StoreError(f"{self.path}: no archive here")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of state change; nested use is not supported."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- run ---------------------------------------------------------------------------------
    def init_run(self, config_json: str, seed: int, problem_name: str, problem_version: str,
                 versions: dict[str, str]) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO run VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 'running')",
                (SCHEMA_VERSION, now, now, config_json, seed, problem_name, problem_version, _dumps(versions)),
            )

    def run_info(self) -> dict[str, Any]:
        row = self._db.execute("SELECT * FROM run WHERE id = 1").fetchone()
        if row is None:
            raise StoreError(f"{self.path}: archive has no run record")
        info = dict(row)
        info["versions"] = json.loads(info.pop("versions_json"))
        return info

    def set_run_state(self, state: str) -> None:
        self._db.execute("UPDATE run SET state = ?, updated_at = ? WHERE id = 1", (state, time.time()))

    def save_rng_state(self, db: sqlite3.Connection, state: dict[str, Any]) -> None:
        db.execute("UPDATE run SET rng_state_json = ?, updated_at = ? WHERE id = 1", (_dumps(state), time.time()))

    def load_rng_state(self) -> dict[str, Any] | None:
        row = self._db.execute("SELECT rng_state_json FROM run WHERE id = 1").fetchone()
        return json.loads(row[0]) if row and row[0] else None

    # -- programs ----------------------------------------------------------------------------
    def insert_program(self, db: sqlite3.Connection, program: Program) -> int:
        program.created_at = program.created_at or time.time()
        values = [self._encode(c, getattr(program, c)) for c in _PROGRAM_COLUMNS]
        cur = db.execute(
            f"INSERT INTO programs ({', '.join(_PROGRAM_COLUMNS)}) VALUES ({', '.join('?' * len(values))})",
            values,
        )
        program.id = int(cur.lastrowid)  # type: ignore[arg-type]
        return program.id

    def update_program(self, db: sqlite3.Connection, program: Program) -> None:
        assert program.id is not None
        cols = [c for c in _PROGRAM_COLUMNS if c != "created_at"]
        db.execute(
            f"UPDATE programs SET {', '.join(f'{c} = ?' for c in cols)} WHERE id = ?",
            [self._encode(c, getattr(program, c)) for c in cols] + [program.id],
        )

    @staticmethod
    def _encode(column: str, value: Any) -> Any:
        if column in _JSON_COLUMNS:
            return _dumps(value)
        if column in {"status", "failure_kind"} and value is not None:
            return str(value)
        return value

    @staticmethod
    def _decode(row: sqlite3.Row) -> Program:
        data = dict(row)
        for c in _JSON_COLUMNS:
            data[c] = json.loads(data[c])
        return Program.model_validate(data)

    def get(self, program_id: int) -> Program:
        row = self._db.execute("SELECT * FROM programs WHERE id = ?", (program_id,)).fetchone()
        if row is None:
            raise StoreError(f"no program with id {program_id}")
        return self._decode(row)

    def record_heldout(self, program_id: int, result: dict[str, Any]) -> None:
        """Attach held-out results to a program's metrics (under "heldout"); fitness is untouched."""
        with self.transaction() as db:
            row = db.execute("SELECT metrics FROM programs WHERE id = ?", (program_id,)).fetchone()
            metrics = json.loads(row[0])
            metrics["heldout"] = result
            db.execute("UPDATE programs SET metrics = ? WHERE id = ?", (_dumps(metrics), program_id))

    def find_by_hash(self, code_hash: str) -> Program | None:
        """The first non-duplicate program with this normalized-code hash, if any."""
        row = self._db.execute(
            "SELECT * FROM programs WHERE code_hash = ? AND duplicate_of IS NULL ORDER BY id LIMIT 1",
            (code_hash,),
        ).fetchone()
        return self._decode(row) if row else None

    def programs(self, where: str = "1", params: tuple[Any, ...] = (), order: str = "id",
                 limit: int | None = None) -> list[Program]:
        tail = f" LIMIT {int(limit)}" if limit is not None else ""
        rows = self._db.execute(f"SELECT * FROM programs WHERE {where} ORDER BY {order}{tail}", params).fetchall()
        return [self._decode(r) for r in rows]

    def top(self, n: int) -> list[Program]:
        rows = self._db.execute(
            "SELECT * FROM programs WHERE fitness IS NOT NULL ORDER BY fitness DESC, id LIMIT ?", (n,)
        ).fetchall()
        return [self._decode(r) for r in rows]

    def pending(self) -> list[Program]:
        """Programs accepted for evaluation whose result never landed (the run was killed)."""
        return self.programs("status IN (?, ?)", (Status.PROPOSED.value, Status.EVALUATING.value))

    def counts(self) -> dict[str, Any]:
        by_status = dict(self._db.execute("SELECT status, COUNT(*) FROM programs GROUP BY status").fetchall())
        failures = dict(
            self._db.execute(
                "SELECT failure_kind, COUNT(*) FROM programs WHERE status = 'failed' GROUP BY failure_kind"
            ).fetchall()
        )
        rejections = dict(
            self._db.execute(
                "SELECT CASE WHEN duplicate_of IS NOT NULL THEN 'duplicate' ELSE COALESCE(failure_kind, 'other') END,"
                " COUNT(*) FROM programs WHERE status = 'rejected' GROUP BY 1"
            ).fetchall()
        )
        operators = dict(self._db.execute("SELECT operator, COUNT(*) FROM programs GROUP BY operator").fetchall())
        return {"by_status": by_status, "failures": failures, "rejections": rejections, "operators": operators}

    def completed_evaluations(self) -> int:
        """Children whose evaluation finished (evaluated or failed while running)."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM programs WHERE status IN ('evaluated', 'failed') AND operator != 'seed'"
        ).fetchone()
        return int(row[0])

    def seed_id(self) -> int:
        row = self._db.execute("SELECT MIN(id) FROM programs WHERE operator = 'seed'").fetchone()
        if row is None or row[0] is None:
            raise StoreError(f"{self.path}: no seed program")
        return int(row[0])

    def submitted_children(self) -> int:
        """Children accepted for evaluation: what the evaluation budget counts."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM programs WHERE status IN ('evaluating', 'evaluated', 'failed') AND operator != 'seed'"
        ).fetchone()
        return int(row[0])

    # -- events and island counters ------------------------------------------------------------
    def add_event(self, db: sqlite3.Connection, kind: str, island: int, program_id: int | None,
                  data: dict[str, Any] | None = None) -> None:
        db.execute(
            "INSERT INTO events (kind, island, program_id, data, created_at) VALUES (?, ?, ?, ?, ?)",
            (kind, island, program_id, _dumps(data or {}), time.time()),
        )

    def events(self, kinds: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        if kinds:
            rows = self._db.execute(
                f"SELECT * FROM events WHERE kind IN ({', '.join('?' * len(kinds))}) ORDER BY seq", kinds
            ).fetchall()
        else:
            rows = self._db.execute("SELECT * FROM events ORDER BY seq").fetchall()
        return [{**dict(r), "data": json.loads(r["data"])} for r in rows]

    def save_island(self, db: sqlite3.Connection, island: int, evaluations: int, since_improvement: int,
                    best_fitness: float | None, best_program_id: int | None) -> None:
        db.execute(
            "INSERT OR REPLACE INTO islands VALUES (?, ?, ?, ?, ?)",
            (island, evaluations, since_improvement, best_fitness, best_program_id),
        )

    def island_rows(self) -> dict[int, dict[str, Any]]:
        return {r["island"]: dict(r) for r in self._db.execute("SELECT * FROM islands").fetchall()}

    # -- LLM calls and insights ----------------------------------------------------------------
    def add_llm_calls(self, db: sqlite3.Connection, program_id: int | None, calls: list[Any]) -> None:
        """Store each attempt (evolve.llm.client.CallRecord) of the calls behind one program/insight."""
        for c in calls:
            db.execute(
                "INSERT INTO llm_calls (program_id, purpose, model, attempt, prompt, response, tokens_in, "
                "tokens_out, cost, latency_s, error, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (program_id, c.purpose, c.model, c.attempt, json.dumps(c.messages), c.response, c.tokens_in,
                 c.tokens_out, c.cost, c.latency_s, c.error, c.started_at),
            )

    def llm_calls(self, program_id: int | None = None) -> list[dict[str, Any]]:
        if program_id is None:
            rows = self._db.execute("SELECT * FROM llm_calls ORDER BY id").fetchall()
        else:
            rows = self._db.execute("SELECT * FROM llm_calls WHERE program_id = ? ORDER BY id", (program_id,)).fetchall()
        return [dict(r) for r in rows]

    def llm_spend(self) -> dict[str, dict[str, Any]]:
        """Per model: calls, failed attempts, tokens, cost (None when no price is known), mean latency."""
        rows = self._db.execute(
            "SELECT model, COUNT(*) AS attempts, SUM(error IS NOT NULL) AS errors, "
            "COALESCE(SUM(tokens_in), 0) AS tokens_in, COALESCE(SUM(tokens_out), 0) AS tokens_out, "
            "SUM(cost) AS cost, AVG(CASE WHEN error IS NULL THEN latency_s END) AS mean_latency_s "
            "FROM llm_calls GROUP BY model ORDER BY model").fetchall()
        return {r["model"]: {k: r[k] for k in r.keys() if k != "model"} for r in rows}

    def llm_totals(self) -> tuple[int, float]:
        """Tokens (in + out) and known cost of every LLM call of the run."""
        row = self._db.execute("SELECT COALESCE(SUM(tokens_in), 0) + COALESCE(SUM(tokens_out), 0), "
                               "COALESCE(SUM(cost), 0) FROM llm_calls").fetchone()
        return int(row[0]), float(row[1])

    def add_insight(self, db: sqlite3.Connection, evaluations: int, model: str, text: str) -> None:
        db.execute("INSERT INTO insights (created_at, evaluations, model, text) VALUES (?, ?, ?, ?)",
                   (time.time(), evaluations, model, text))

    def insights(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._db.execute("SELECT * FROM insights ORDER BY id").fetchall()]
