"""Opt-in evaluation cache shared across runs (``evaluator.cache_path``).

Within a run, dedup already guarantees an identical normalized program is evaluated once. Across
runs, a SQLite file maps (problem name, version, options, stages, evaluator limits, job kind,
normalized-code hash) to the trusted result of a successful evaluation, so a program some earlier
run already scored under the same limits is not trained again. Only successful results are kept:
a failure may come from a limit or a lost worker that another run would not meet. A problem
whose scoring changes must bump its ``version``, which keys the cache.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from evaluators.jobs import Backend, EvalJob, EvalResult, JobKind
from evolve.hashing import source_hash
from evolve.problem import Problem


def problem_key(problem: Problem, options: dict[str, Any], limits: dict[str, Any]) -> str:
    """What a cached result depends on besides the code: the problem, its options and stages, and the
    limits it ran under (a result obtained under looser limits must not answer for tighter ones)."""
    stages = [(s.name, s.threshold, s.timeout_s) for s in problem.stages]
    return json.dumps([problem.name, problem.version, options, stages, limits], sort_keys=True, default=str)


class EvalCache:
    def __init__(self, path: str | Path, key: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.key = key
        self._db = sqlite3.connect(str(path), isolation_level=None, timeout=30.0, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS results (problem TEXT NOT NULL, code_hash TEXT NOT NULL, "
            "result TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (problem, code_hash))"
        )

    def _slot(self, job: EvalJob) -> tuple[str, str]:
        return self.key, f"{job.kind}:{source_hash(job.code)}"

    def get(self, job: EvalJob) -> EvalResult | None:
        row = self._db.execute(
            "SELECT result FROM results WHERE problem = ? AND code_hash = ?", self._slot(job)
        ).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        data["kind"] = JobKind(data.get("kind", "search"))
        result = EvalResult(**data)
        result.program_id, result.cached = job.program_id, True
        return result

    def put(self, job: EvalJob, result: EvalResult) -> None:
        data = dataclasses.asdict(result)  # only successes are stored: no failure kind to encode
        self._db.execute(
            "INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?)", (*self._slot(job), json.dumps(data), time.time())
        )

    def close(self) -> None:
        self._db.close()


class CachedBackend:
    """Answers from the cache when it can, evaluates (and remembers) otherwise."""

    def __init__(self, inner: Backend, cache: EvalCache) -> None:
        self.inner, self.cache = inner, cache
        self._hits: list[EvalResult] = []
        self._jobs: dict[tuple[int, JobKind], EvalJob] = {}

    def submit(self, job: EvalJob) -> None:
        hit = self.cache.get(job)
        if hit is not None:
            self._hits.append(hit)
            return
        self._jobs[(job.program_id, job.kind)] = job
        self.inner.submit(job)

    def wait(self, timeout: float) -> list[EvalResult]:
        hits, self._hits = self._hits, []
        evaluated = self.inner.wait(0.0 if hits else timeout)
        for r in evaluated:
            job = self._jobs.pop((r.program_id, r.kind), None)
            if job is not None and r.ok:
                self.cache.put(job, r)
        return hits + evaluated

    def in_flight(self) -> int:
        return len(self._hits) + self.inner.in_flight()

    def close(self, abort: bool = False) -> None:
        self.inner.close(abort)
        self.cache.close()
