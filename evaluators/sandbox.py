"""Sandbox: runs one candidate stage in its jail and classifies what happened.

A stage runs in a child forked by a jailed server (evaluators.server): a warm server from the pool
(the problem already loaded) or, for a fresh start, a one-shot server whose child loads the problem
under its limits. The sandbox refuses to exist where the isolation asked for cannot be had
(:func:`evaluators.jail.require`): it never turns itself off. A warm start needs something that
contains what a candidate leaves behind between two jobs of one server (the jail's PID namespace, or a
pids cgroup); without either every stage starts fresh.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any

from evaluators import cgroups, jail
from evaluators.limits import StageLimits
from evaluators.pool import POOL, JailedServer, JailSpec, Reply, ServerDied
from evaluators.protocol import ProtocolError, decode
from evaluators.server import CUDA_IN_SERVER
from evolve.config import EvaluatorConfig
from evolve.problem import Stage
from evolve.program import FailureKind


@dataclass
class StageRun:
    """What came back from one stage: artifacts on success, a classified failure otherwise."""

    artifacts: dict[str, Any] | None
    failure: FailureKind | None = None
    message: str = ""
    output: str = ""
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # the whole jail's CPU time, as the kernel counted it (0 without a cgroup)


class Sandbox:
    def __init__(self, cfg: EvaluatorConfig, hidden: tuple[str, ...] = ()) -> None:
        jail.require(cfg.isolation)
        self.cfg, self.hidden = cfg, hidden
        self.warm = cfg.warm_start and (cfg.isolation == "bubblewrap" or cgroups.available()["pids"])

    def run(
        self,
        problem_folder: str,
        options: dict[str, Any],
        code: str,
        stage: Stage,
        request: dict[str, Any] | None = None,
    ) -> StageRun:
        limits = StageLimits.for_stage(self.cfg, stage)
        spec = JailSpec.of(problem_folder, options, self.cfg.isolation, self.hidden, limits)
        job = {
            "problem_folder": problem_folder,
            "options": options,
            "code": code,
            "stage": stage.name,
            "request": request,
        }
        if self.warm and problem_folder not in POOL.fresh_only:
            try:
                server = POOL.get(spec)
            except ServerDied as exc:
                if CUDA_IN_SERVER not in str(exc):
                    return StageRun(None, FailureKind.CRASH, str(exc))
                POOL.fresh_only.add(problem_folder)  # candidates of this problem start fresh from now on
            else:
                try:
                    return _classify(server.run(job, limits), limits)
                except (ServerDied, TimeoutError) as exc:  # the candidate took its server down, or froze it
                    POOL.drop(server)
                    kind = FailureKind.TIMEOUT if isinstance(exc, TimeoutError) else FailureKind.CRASH
                    return StageRun(None, kind, f"evaluation server: {exc}", seconds=limits.wall_s)
        return self._run_fresh(spec, job, limits)

    @staticmethod
    def _run_fresh(spec: JailSpec, job: dict[str, Any], limits: StageLimits) -> StageRun:
        try:
            server = JailedServer(spec, warm=False)
        except ServerDied as exc:
            return StageRun(None, FailureKind.CRASH, str(exc))
        try:
            return _classify(server.run(job, limits), limits)
        except (ServerDied, TimeoutError) as exc:
            kind = FailureKind.TIMEOUT if isinstance(exc, TimeoutError) else FailureKind.CRASH
            return StageRun(None, kind, f"evaluation server: {exc}", seconds=limits.wall_s)
        finally:
            server.close()


def live_warm_servers() -> int:
    return POOL.live()


def _classify(reply: Reply, limits: StageLimits) -> StageRun:
    def failed(kind: FailureKind, message: str) -> StageRun:
        return StageRun(None, kind, message, reply.output, reply.seconds, reply.cpu_seconds)

    if reply.timed_out:
        return failed(FailureKind.TIMEOUT, f"wall-clock limit of {limits.wall_s:g}s exceeded")
    if reply.oom_kills > 0:
        return failed(FailureKind.MEMORY, f"memory limit of {limits.memory_mb} MB exceeded (cgroup)")
    if reply.over_limit:
        kind = FailureKind.CONTRACT if reply.over_limit.startswith("result") else FailureKind.CRASH
        return failed(kind, f"over a limit: {reply.over_limit}")
    code = reply.returncode
    if code < 0:
        sig = -code
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        if sig == signal.SIGXCPU:
            return failed(FailureKind.TIMEOUT, "CPU-time limit exceeded")
        return failed(FailureKind.CRASH, f"killed by signal {name}")
    if reply.result_error:
        return failed(FailureKind.CONTRACT, f"malformed result: {reply.result_error}")
    result: dict[str, Any] | None = None
    if reply.result:
        try:
            result = decode(reply.result)
        except ProtocolError as exc:
            return failed(FailureKind.CONTRACT, f"malformed result: {exc}")
    if result is not None and result.get("ok") is True and code == 0 and isinstance(result.get("artifacts"), dict):
        return StageRun(result["artifacts"], None, "", reply.output, reply.seconds, reply.cpu_seconds)
    if result is not None and result.get("ok") is False:
        return failed(FailureKind.parse(result.get("kind", "crash")), str(result.get("message", ""))[:2000])
    if code == 0:
        return failed(FailureKind.CONTRACT, "the program exited without returning a result")
    return failed(FailureKind.CRASH, f"exit code {code}")
