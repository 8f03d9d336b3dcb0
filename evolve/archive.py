"""ArchiveReader: the read side of a run's archive (the CLI's read commands, the report, the web view).

An archive is opened read-only (``mode=ro``: no DDL, no writes, also while a run is writing it) and read
through named queries: no SQL leaves this module and evolve/store.py, whose LineageStore (the engine's
writer) is an ArchiveReader with the run's operations and the engine's own queries on top. The schema is
documented in docs/archive.md and is meant to be read with plain sqlite3/pandas.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from evolve.errors import UserError
from evolve.program import (
    PROBE_STAGE,
    SEED_OPERATOR,
    EventKind,
    LLMFailureCause,
    LLMOutcome,
    LLMProvenance,
    Program,
    RejectionKind,
    RunState,
    Status,
)
from evolve.schema import SCHEMA_VERSION

ARCHIVE = "archive.sqlite"  # a run directory's archive

JSON_COLUMNS = ("parent_ids", "metrics", "descriptors", "operator_info")
LLM_FIELDS = tuple(LLMProvenance.model_fields)
_SUMMARY_COLUMNS = (
    "id, parent_ids, operator, island, generation, status, failure_kind, rejection, duplicate_of, "
    "fitness, validated_fitness, heldout_fitness, descriptors, created_at, eval_finished_at, "
    "llm_model, llm_cost"
)
CHUNK = 500  # ids per IN (...) list: SQLite caps the variables of one statement


def sql_set(*values: str) -> str:
    """An SQL list of enum values, e.g. ``('evaluated', 'failed')`` (the enums are the one spelling)."""
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


FINISHED_STATUSES = (Status.EVALUATED, Status.FAILED)  # an evaluation ran to its end
FINISHED = sql_set(*FINISHED_STATUSES)
NOT_SEED = f"operator != '{SEED_OPERATOR}'"


def before_training(table: str = "") -> str:
    """SQL: the program failed at the behaviour probe, before any training (no budget spent)."""
    t = f"{table}." if table else ""
    return f"({t}status = '{Status.FAILED}' AND COALESCE({t}stage_reached, '') = '{PROBE_STAGE}')"


BEFORE_TRAINING = before_training()
TRAINED = f"status IN {FINISHED} AND NOT {BEFORE_TRAINING}"  # what budget.max_evaluations counts


# failed, or rejected for what it was (not as a duplicate of another)
_BROKEN = (
    f"status = '{Status.FAILED}' OR (status = '{Status.REJECTED}' "
    f"AND rejection IN {sql_set(RejectionKind.INVALID, RejectionKind.OPERATOR)})"
)


class StoreError(UserError, RuntimeError):
    pass


def in_chunks(ids: Iterable[int]) -> Iterator[tuple[str, list[int]]]:
    """``(placeholders, chunk)`` for each slice of ids an ``IN ({placeholders})`` query can take."""
    ids = list(ids)
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]
        yield ", ".join("?" * len(chunk)), chunk


def decode_program(row: sqlite3.Row) -> Program:
    data = dict(row)
    for c in JSON_COLUMNS:
        data[c] = json.loads(data[c])
    llm = {f: data.pop(f"llm_{f}") for f in LLM_FIELDS}
    data.pop("parent_id", None)
    data["llm"] = llm if llm["model"] is not None else None
    return Program.model_validate(data)


def _summary(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d["parent_ids"], d["descriptors"] = json.loads(d["parent_ids"]), json.loads(d["descriptors"])
    return d


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


class Best(NamedTuple):
    """The program with the highest search fitness."""

    id: int
    fitness: float


class ArchiveReader:
    """A run's archive, read through named queries."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db, self.path = db, path

    @classmethod
    def open(cls, path: str | Path) -> ArchiveReader:
        """An existing archive for reading: no DDL, no writes, also while a run is writing it."""
        path = cls._existing(path)
        reader = cls(cls._connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True), path)
        reader._check_version()
        return reader

    def close(self) -> None:
        self._db.close()

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

    # -- run ---------------------------------------------------------------------------------------
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

    # -- programs ----------------------------------------------------------------------------------
    def get(self, program_id: int) -> Program:
        row = self._db.execute("SELECT * FROM programs WHERE id = ?", (program_id,)).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: no program with id {program_id}")
        return decode_program(row)

    def get_many(self, ids: Iterable[int]) -> list[Program]:
        """The programs with these ids, in id order (unknown ids are skipped)."""
        out: list[Program] = []
        for marks, chunk in in_chunks(ids):
            rows = self._db.execute(f"SELECT * FROM programs WHERE id IN ({marks}) ORDER BY id", chunk).fetchall()
            out += [decode_program(r) for r in rows]
        return out

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

    def best(self) -> Best | None:
        """The program with the highest search fitness (the earliest of a tie)."""
        row = self._db.execute(
            "SELECT id, fitness FROM programs WHERE fitness IS NOT NULL ORDER BY fitness DESC, id LIMIT 1"
        ).fetchone()
        return Best(int(row[0]), float(row[1])) if row else None

    def champion(self) -> Program | None:
        """The run's answer: the best validated program, else (nothing validated) the best by search fitness."""
        best = self.top(1, by="validated")
        return best[0] if best else None

    def counts(self) -> dict[str, dict[str, int]]:
        q = self._db.execute
        return {
            "by_status": dict(q("SELECT status, COUNT(*) FROM programs GROUP BY status").fetchall()),
            "failures": dict(
                q(
                    f"SELECT failure_kind, COUNT(*) FROM programs WHERE status = '{Status.FAILED}' "
                    "GROUP BY failure_kind"
                ).fetchall()
            ),
            "rejections": dict(
                q(
                    f"SELECT rejection, COUNT(*) FROM programs WHERE status = '{Status.REJECTED}' GROUP BY rejection"
                ).fetchall()
            ),
            "operators": dict(q("SELECT operator, COUNT(*) FROM programs GROUP BY operator").fetchall()),
        }

    def completed_evaluations(self) -> int:
        """Children whose training finished (evaluated, or failed in training): what the budget counts (a
        child that failed its behaviour probe never trained)."""
        return int(self._db.execute(f"SELECT COUNT(*) FROM programs WHERE {TRAINED} AND {NOT_SEED}").fetchone()[0])

    def operator_outcomes(self) -> dict[str, dict[str, int]]:
        """Per operator, what became of its children: written; refused before running (invalid: a syntax,
        static or type error, or no child at all); duplicates (code or behaviour); failed before training (the
        probe); trained (evaluated or failed in training); improved (a search fitness above its first
        parent's). What the operator mix is judged on."""
        rejected = f"c.status = '{Status.REJECTED}'"
        refused = sql_set(RejectionKind.INVALID, RejectionKind.OPERATOR)
        duplicate = sql_set(RejectionKind.DUPLICATE_CODE, RejectionKind.DUPLICATE_BEHAVIOUR)
        before = before_training("c")
        rows = self._db.execute(
            "SELECT c.operator, COUNT(*), "
            f"SUM({rejected} AND c.rejection IN {refused}), SUM({rejected} AND c.rejection IN {duplicate}), "
            f"SUM({before}), SUM(c.status IN {FINISHED} AND NOT {before}), "
            "SUM(c.fitness IS NOT NULL AND p.fitness IS NOT NULL AND c.fitness > p.fitness) "
            f"FROM programs c LEFT JOIN programs p ON p.id = c.parent_id WHERE c.{NOT_SEED} GROUP BY c.operator"
        ).fetchall()
        keys = ("written", "refused", "duplicates", "failed_before_training", "trained", "improved")
        return {r[0]: dict(zip(keys, (int(v or 0) for v in r[1:]), strict=True)) for r in rows}

    def proposed_children(self) -> int:
        """Every child written, whatever became of it (budget.max_proposals counts these)."""
        return int(self._db.execute(f"SELECT COUNT(*) FROM programs WHERE {NOT_SEED}").fetchone()[0])

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
        out: dict[int, float | None] = {}
        for marks, chunk in in_chunks(set(ids)):
            rows = self._db.execute(f"SELECT id, fitness FROM programs WHERE id IN ({marks})", chunk)
            out.update({int(r[0]): r[1] for r in rows})
        return out

    def children(self, parent_id: int, limit: int) -> list[Program]:
        """The newest children bred from this parent (as first parent)."""
        rows = self._db.execute(
            "SELECT * FROM programs WHERE parent_id = ? ORDER BY id DESC LIMIT ?", (parent_id, limit)
        ).fetchall()
        return [decode_program(r) for r in rows]

    def llm_outcomes(self, program_id: int | None = None) -> list[LLMOutcome]:
        """How each finished LLM child (or just ``program_id``) turned out, with the fitness of its first
        three ancestors (the selector's reward needs the nearest one that scored)."""
        only = "" if program_id is None else f" AND c.id = {int(program_id)}"
        finished = sql_set(Status.REJECTED, *FINISHED_STATUSES)
        rows = self._db.execute(
            "SELECT c.id, c.llm_model, c.llm_cost, c.fitness, c.operator, c.failure_kind, "
            "length(c.code), p1.fitness, p2.fitness, p3.fitness "
            "FROM programs c LEFT JOIN programs p1 ON p1.id = c.parent_id "
            "LEFT JOIN programs p2 ON p2.id = p1.parent_id LEFT JOIN programs p3 ON p3.id = p2.parent_id "
            f"WHERE c.llm_model IS NOT NULL AND c.status IN {finished}{only} ORDER BY c.id"
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

    def summaries(self, after_id: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Light rows (no code, output or prompts) of the programs after ``after_id``, in id order."""
        tail = " LIMIT ?" if limit is not None else ""
        params: tuple[Any, ...] = (after_id, limit) if limit is not None else (after_id,)
        rows = self._db.execute(f"SELECT {_SUMMARY_COLUMNS} FROM programs WHERE id > ? ORDER BY id{tail}", params)
        return [_summary(r) for r in rows]

    def summaries_of(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        """Light rows of these programs, in id order."""
        out: list[dict[str, Any]] = []
        for marks, chunk in in_chunks(sorted(set(ids))):
            rows = self._db.execute(f"SELECT {_SUMMARY_COLUMNS} FROM programs WHERE id IN ({marks}) ORDER BY id", chunk)
            out += [_summary(r) for r in rows]
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
        """Every trained child in completion order: (id, island, status, failure kind, fitness, finished at).
        The run's clock: a child that failed its probe never trained and is not on it."""
        rows = self._db.execute(
            f"SELECT id, island, status, failure_kind, fitness, eval_finished_at FROM programs "
            f"WHERE {NOT_SEED} AND {TRAINED} ORDER BY eval_finished_at, id"
        )
        return [tuple(r) for r in rows]

    def failure_rows(self, limit: int) -> list[dict[str, Any]]:
        """The newest failed or rejected (not duplicate) children, newest first."""
        rows = self._db.execute(
            "SELECT id, operator, llm_model, status, COALESCE(failure_kind, rejection) AS kind, rejection, "
            f"stage_reached, substr(reason, 1, 400) AS reason, created_at FROM programs WHERE {_BROKEN} "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [dict(r) for r in rows]

    def failure_counts(self) -> list[tuple[str, str, str | None, int]]:
        """(kind, operator, model, count) over every failed or rejected (not duplicate) child."""
        rows = self._db.execute(
            "SELECT COALESCE(failure_kind, rejection), operator, llm_model, COUNT(*) FROM programs "
            f"WHERE {_BROKEN} GROUP BY 1, 2, 3"
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
    def llm_calls(self, program_id: int | None = None) -> list[dict[str, Any]]:
        if program_id is None:
            rows = self._db.execute("SELECT * FROM llm_calls ORDER BY id").fetchall()
        else:
            rows = self._db.execute(
                "SELECT * FROM llm_calls WHERE program_id = ? ORDER BY id", (program_id,)
            ).fetchall()
        return [dict(r) for r in rows]

    def llm_spend(self) -> dict[str, dict[str, Any]]:
        """Per model: calls, failed attempts (and by cause), tokens, cost (None when no price is known), mean
        latency."""
        rows = self._db.execute(
            "SELECT model, COUNT(*) AS attempts, SUM(error IS NOT NULL) AS errors, "
            "COALESCE(SUM(tokens_in), 0) AS tokens_in, COALESCE(SUM(tokens_out), 0) AS tokens_out, "
            "SUM(cost) AS cost, AVG(CASE WHEN error IS NULL THEN latency_s END) AS mean_latency_s "
            "FROM llm_calls GROUP BY model ORDER BY model"
        ).fetchall()
        out = {r["model"]: {k: r[k] for k in r.keys() if k != "model"} | {"failed_by_cause": {}} for r in rows}
        for model, error in self._db.execute("SELECT model, error FROM llm_calls WHERE error IS NOT NULL"):
            causes = out[model]["failed_by_cause"]
            cause = str(LLMFailureCause.of(error))
            causes[cause] = causes.get(cause, 0) + 1
        return out

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

    def insight_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM insights").fetchone()[0])
