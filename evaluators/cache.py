"""Opt-in evaluation cache shared across runs (``evaluator.cache_path``).

Within a run, dedup already guarantees an identical normalized program is evaluated once. Across
runs, a SQLite file maps (problem name, version, options, stages, normalized-code hash) to the
trusted result of a successful evaluation, so a program some earlier run already scored is not
trained again. Only successful results are kept: a failure may come from a limit or a lost
worker that another run would not meet. A problem whose scoring changes must bump its
``version``, which keys the cache.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from pathlib import Path

from evaluators.backend import Backend
from evaluators.cascade import EvalResult
from evolve.mutation.blocks import code_hash
from evolve.problem import Problem


def problem_key(problem: Problem, options: dict[str, object]) -> str:
    stages = [(s.name, s.threshold) for s in problem.stages]
    return json.dumps([problem.name, problem.version, options, stages], sort_keys=True, default=str)


class EvalCache:
    def __init__(self, path: str | Path, key: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.key = key
        self._db = sqlite3.connect(str(path), isolation_level=None, timeout=30.0, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS results (problem TEXT NOT NULL, code_hash TEXT NOT NULL, "
                         "result TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (problem, code_hash))")

    def get(self, hash_: str) -> EvalResult | None:
        row = self._db.execute("SELECT result FROM results WHERE problem = ? AND code_hash = ?",
                               (self.key, hash_)).fetchone()
        return EvalResult(**json.loads(row[0])) if row else None

    def put(self, hash_: str, result: EvalResult) -> None:
        data = dataclasses.asdict(result)  # only successes are stored: no failure kind to encode
        self._db.execute("INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?)",
                         (self.key, hash_, json.dumps(data), time.time()))

    def close(self) -> None:
        self._db.close()


class CachedBackend:
    """Answers from the cache when it can, evaluates (and remembers) otherwise."""

    def __init__(self, inner: Backend, cache: EvalCache) -> None:
        self.inner, self.cache = inner, cache
        self._hits: list[EvalResult] = []
        self._hashes: dict[int, str] = {}

    def submit(self, program_id: int, code: str) -> None:
        h = code_hash(code)
        hit = self.cache.get(h)
        if hit is not None:
            hit.program_id, hit.cached = program_id, True
            self._hits.append(hit)
            return
        self._hashes[program_id] = h
        self.inner.submit(program_id, code)

    def wait(self, timeout: float) -> list[EvalResult]:
        hits, self._hits = self._hits, []
        evaluated = self.inner.wait(0.0 if hits else timeout)
        for r in evaluated:
            h = self._hashes.pop(r.program_id, None)
            if h is not None and r.ok:
                self.cache.put(h, r)
        return hits + evaluated

    def in_flight(self) -> int:
        return len(self._hits) + self.inner.in_flight()

    def close(self) -> None:
        self.inner.close()
        self.cache.close()
