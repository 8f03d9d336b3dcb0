"""Evaluation backends: where jobs run. Both keep one sandbox child per candidate stage.

* :class:`ProcessBackend`: threads of the controller, each driving sandbox children. No setup.
* :class:`RayBackend`: Ray tasks on a local runtime that ``evolve`` starts and stops itself, or on
  an existing cluster (``evaluator.ray_address``), with per-evaluation CPU/GPU resources.

Both implement :class:`evaluators.jobs.Backend`; :mod:`evaluators.factory` picks one.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

from evaluators.cascade import evaluate
from evaluators.jobs import EvalJob, EvalResult
from evaluators.pool import kill_all_servers
from evolve.config import EvaluatorConfig
from evolve.loader import ProblemRef
from evolve.program import FailureKind
from evolve.secrets import secret_names


class ProcessBackend:
    def __init__(self, ref: ProblemRef, cfg: EvaluatorConfig, max_in_flight: int, hidden: tuple[str, ...] = ()) -> None:
        self.ref, self.cfg, self.hidden = ref, cfg, hidden
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="evolve-eval")
        self._futures: dict[Future[EvalResult], EvalJob] = {}

    def submit(self, job: EvalJob) -> None:
        fut = self._pool.submit(evaluate, job, self.ref, self.cfg, self.hidden)
        self._futures[fut] = job

    def wait(self, timeout: float) -> list[EvalResult]:
        if not self._futures:
            return []
        done, _ = wait(list(self._futures), timeout=timeout, return_when=FIRST_COMPLETED)
        out = []
        for fut in done:
            job = self._futures.pop(fut)
            try:
                out.append(fut.result())
            except Exception as exc:  # a harness bug must not kill the run: record it on the program
                out.append(
                    EvalResult(
                        job.program_id,
                        ok=False,
                        kind=job.kind,
                        failure_kind=FailureKind.CRASH,
                        reason=f"evaluator error: {type(exc).__name__}: {exc}",
                    )
                )
        return out

    def in_flight(self) -> int:
        return len(self._futures)

    def close(self, abort: bool = False) -> None:
        if abort:  # the jails of the evaluations in flight: their threads return at once
            kill_all_servers()
        self._pool.shutdown(wait=True, cancel_futures=True)


class RayBackend:
    def __init__(self, ref: ProblemRef, cfg: EvaluatorConfig, max_in_flight: int, hidden: tuple[str, ...] = ()) -> None:
        import ray

        self._ray = ray
        self.ref, self.cfg, self.hidden = ref, cfg, hidden
        self._started_here = False
        if not ray.is_initialized():
            # The workers' environment is what we pass here, not the controller's: keep LLM keys out.
            runtime_env: dict[str, Any] = {"env_vars": {"OMP_NUM_THREADS": "1"}}
            if cfg.ray_address:
                _check_reachable(cfg.ray_address)
                _join(ray, cfg.ray_address, runtime_env)
            else:
                # The local runtime's processes (and so every worker) inherit the environment at
                # ray.init(): start them without anything that looks like a secret (LLM keys...), listening
                # on loopback only. Ray (>= 2.59) starts a local runtime with token authentication and
                # generates its token, unless RAY_AUTH_MODE says otherwise (tested).
                # address="local": a new runtime of our own, never one that happens to run on this machine.
                with _secrets_hidden(), _loopback_only():
                    ray.init(
                        address="local",
                        num_cpus=max(max_in_flight, int(cfg.num_cpus * max_in_flight)),
                        include_dashboard=False,
                        runtime_env=runtime_env,
                        log_to_driver=False,
                    )
                self._started_here = True
        self._remote: Any = ray.remote(evaluate).options(
            num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus, max_retries=cfg.retries_on_worker_lost, retry_exceptions=False
        )
        self._refs: dict[Any, EvalJob] = {}

    def submit(self, job: EvalJob) -> None:
        ref = self._remote.remote(job, self.ref, self.cfg, self.hidden)
        self._refs[ref] = job

    def wait(self, timeout: float) -> list[EvalResult]:
        if not self._refs:
            return []
        ready, _ = self._ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            job = self._refs.pop(ref)
            try:
                out.append(self._ray.get(ref))
            except (
                self._ray.exceptions.WorkerCrashedError,
                self._ray.exceptions.NodeDiedError,
                self._ray.exceptions.ObjectLostError,
            ) as exc:
                out.append(
                    EvalResult(
                        job.program_id,
                        ok=False,
                        kind=job.kind,
                        failure_kind=FailureKind.WORKER_LOST,
                        reason=f"{type(exc).__name__}: the worker running it died",
                    )
                )
            except self._ray.exceptions.RayError as exc:
                out.append(
                    EvalResult(
                        job.program_id,
                        ok=False,
                        kind=job.kind,
                        failure_kind=FailureKind.CRASH,
                        reason=f"evaluator error: {type(exc).__name__}: {str(exc)[:500]}",
                    )
                )
        return out

    def in_flight(self) -> int:
        return len(self._refs)

    def close(self, abort: bool = False) -> None:
        for ref in list(self._refs):  # forced either way: a Ray task cannot be left to finish unobserved
            self._ray.cancel(ref, force=True)
        self._refs.clear()
        if self._started_here:
            self._ray.shutdown()


_RAY_OWN = ("RAY_",)  # Ray's own settings (RAY_AUTH_MODE...) must reach its processes


@contextmanager
def _secrets_hidden() -> Iterator[None]:
    hidden = {k: os.environ.pop(k) for k in secret_names() if not k.startswith(_RAY_OWN)}
    try:
        yield
    finally:
        os.environ.update(hidden)


@contextmanager
def _loopback_only() -> Iterator[None]:
    """Ray's single-machine mode while the local runtime starts: the node address is 127.0.0.1 and every one
    of its servers (GCS, raylet, object manager, workers) listens there, not on all interfaces. The runtime's
    processes read it from their environment; this process from Ray's constant (read at import)."""
    from ray._private import ray_constants

    before_env, before = os.environ.get(_RAY_SINGLE_MACHINE), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[_RAY_SINGLE_MACHINE], ray_constants.ENABLE_RAY_CLUSTER = "0", False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before
        if before_env is None:
            os.environ.pop(_RAY_SINGLE_MACHINE, None)
        else:
            os.environ[_RAY_SINGLE_MACHINE] = before_env


_RAY_SINGLE_MACHINE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": a one-machine runtime, all on loopback


AUTH_HINT = (
    "set RAY_AUTH_MODE=token and give this machine the cluster's token where Ray's clients read it "
    "(RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)"
)


def _join(ray: Any, address: str, runtime_env: dict[str, Any]) -> None:
    """Join a running cluster (`ray start --head`). With token auth on, a client needs RAY_AUTH_MODE=token and
    the token: where Ray's own clients find a token and RAY_AUTH_MODE is unset, token mode is taken (as Ray's
    CLI does); a refusal is one line that says what to set, not Ray's pages of retries."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )

        maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    except ImportError:  # another Ray: its own defaults apply
        pass
    failure: Exception | None = None
    with _stderr_captured() as captured:
        try:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
        except Exception as exc:  # noqa: BLE001 (re-raised below, once stderr is back)
            failure = exc
        said = captured()
    if failure is not None and (
        "InvalidAuthToken" in said or "Unauthenticated" in said or "AuthenticationError" in type(failure).__name__
    ):
        raise ConnectionError(
            f"evaluator.ray_address: the Ray cluster at {address} refused this client (it uses token "
            f"authentication): {AUTH_HINT}"
        ) from None
    sys.stderr.write(said)  # anything else Ray said, where it would have gone
    if failure is not None:
        raise failure


@contextmanager
def _stderr_captured() -> Iterator[Callable[[], str]]:
    """What this process (Ray's C++ core included) writes to file descriptor 2 meanwhile, held back."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)

        def read() -> str:
            sys.stderr.flush()
            sink.seek(0)
            return sink.read().decode(errors="replace")

        try:
            yield read
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """ray.init() to a dead address retries for minutes; fail fast with a clear message instead."""
    import socket

    if address in {"auto", "local"} or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1.0):
                return
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                raise ConnectionError(f"evaluator.ray_address: no Ray cluster answers at {address}") from None
            time.sleep(0.2)
