"""InstantBackend: answers every job at once with numbers derived from the code, so a test (or the
engine_overhead benchmark) exercises the loop, the store and the islands without evaluating anything.

Search fitness and descriptors come from a hash of the code. Fingerprints come from the code with
every numeric literal replaced by 0, so children that differ only in constants count as the
same behaviour (a stand-in for the real probes). Validation fitness is the search fitness minus
0.1, so the champion is predictable.
"""

from __future__ import annotations

import hashlib
import re

from evaluators.jobs import EvalJob, EvalResult, JobKind
from evolve.program import FailureKind

_NUMBER = re.compile(r"(?<![\w.])\d+\.?\d*(?:e[-+]?\d+)?")


def _pseudo(code: str) -> int:
    return int(hashlib.sha256(code.encode()).hexdigest()[:8], 16)


def behaviour(code: str) -> str:
    return hashlib.sha256(_NUMBER.sub("0", code).encode()).hexdigest()[:32]


class InstantBackend:
    def __init__(self, fail_every: int = 0, probe_fail_every: int = 0) -> None:
        self.done: list[EvalResult] = []
        self.submitted: list[EvalJob] = []
        self.fail_every = fail_every  # every n-th search job fails (crash), to exercise failures
        self.probe_fail_every = probe_fail_every  # every n-th child fails its fingerprint probe (before training)

    def submit(self, job: EvalJob) -> None:
        self.submitted.append(job)
        h = _pseudo(job.code)
        probe_fails = self.probe_fail_every and (h // 7) % self.probe_fail_every == 0 and job.program_id > 1
        if job.kind == JobKind.FINGERPRINT and probe_fails:
            self.done.append(
                EvalResult(
                    job.program_id,
                    ok=False,
                    kind=job.kind,
                    stage_reached="fingerprint",
                    failure_kind=FailureKind.CRASH,
                    reason="stage fingerprint: TypeError: pseudo failure",
                )
            )
        elif job.kind == JobKind.FINGERPRINT:
            self.done.append(
                EvalResult(
                    job.program_id, ok=True, kind=job.kind, fingerprint=behaviour(job.code), stage_reached="fingerprint"
                )
            )
        elif self.fail_every and job.kind == JobKind.SEARCH and h % self.fail_every == 0 and job.program_id > 1:
            self.done.append(
                EvalResult(
                    job.program_id,
                    ok=False,
                    kind=job.kind,
                    stage_reached="quick",
                    failure_kind=FailureKind.CRASH,
                    reason="crash: pseudo failure",
                )
            )
        else:
            fitness = h / 2**32 - (0.1 if job.kind == JobKind.VALIDATE else 0.0)
            self.done.append(
                EvalResult(
                    job.program_id,
                    ok=True,
                    kind=job.kind,
                    fitness=fitness,
                    stage_reached="full",
                    metrics={"pseudo": fitness},
                    descriptors={"ast_nodes": 20 + h % 400, "calls": h % 40},
                )
            )

    def wait(self, timeout: float) -> list[EvalResult]:
        out, self.done = self.done, []
        return out

    def in_flight(self) -> int:
        return len(self.done)

    def close(self, abort: bool = False) -> None:
        pass
