"""Opening, creating and executing a run directory: the glue between the CLI and the engine.

Also the one way to evaluate programs outside a run's loop (`evolve heldout`, `evolve baselines`):
jobs through the same backend and cascade a run uses.
"""

from __future__ import annotations

import importlib.metadata
import platform
import signal
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import Any

from evaluators.factory import make_backend
from evaluators.jail import describe, require
from evaluators.jobs import EvalJob, EvalResult
from evolve.archive import ARCHIVE, ArchiveReader, StoreError
from evolve.compat.openevolve_config import evolve_defaults
from evolve.config import ConfigError, EvaluatorConfig, RunConfig, config_from_json, load_config
from evolve.controller import Controller, Progress
from evolve.llm.client import LLMClient
from evolve.llm.operators import LLM_OPERATORS, LLMTools
from evolve.llm.prompts import PromptLibrary
from evolve.loader import ProblemRef, resolve_problem
from evolve.operators import uses_llm
from evolve.problem import Problem
from evolve.program import RunState
from evolve.secrets import secret_values
from evolve.store import LineageStore


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("evolve", "ribs", "ray", "torch", "pydantic", "numpy"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def load_run_config(path: Path | None, overrides: list[str]) -> tuple[RunConfig, list[str]]:
    """The run's config, and notes for the user. A problem folder in OpenEvolve's layout may bring its own
    config.yaml: what maps onto evolve's config is read as defaults under ``path`` and ``--set``; the
    keys with no counterpart are listed in the notes."""
    cfg = load_config(path, overrides)  # alone first: its errors name its own file and keys
    if not cfg.problem.path:
        return cfg, []
    base, unmapped = evolve_defaults(Path(cfg.problem.path))
    notes = [f"{cfg.problem.path}/config.yaml: no counterpart in evolve for {', '.join(unmapped)}"] if unmapped else []
    return (load_config(path, overrides, base) if base else cfg), notes


def problem_ref(cfg: RunConfig) -> ProblemRef:
    folder = resolve_problem(cfg.problem.name, cfg.problem.path)
    return ProblemRef(str(folder), dict(cfg.problem.options))


def create_run(cfg: RunConfig, run_dir: Path) -> LineageStore:
    """A new run directory with its archive; refuses to touch an existing archive."""
    archive = run_dir / ARCHIVE
    if archive.exists():
        if _has_run_record(archive):
            raise StoreError(f"{run_dir}: already holds a run; use `evolve resume {run_dir}` to continue it")
        # Killed while being created (before its first commit): nothing stored, start afresh.
        for suffix in ("", "-wal", "-shm"):
            (run_dir / (ARCHIVE + suffix)).unlink(missing_ok=True)
    ref = problem_ref(cfg)
    cfg.problem.path = ref.folder  # resume must find the same problem even if the cwd changes
    problem = ref.load()
    store = LineageStore.create(archive)
    store.init_run(cfg.model_dump_json(), cfg.seed, problem.name, problem.version, _versions(), problem.declaration())
    return store


def _has_run_record(path: Path) -> bool:
    try:
        ArchiveReader.open(path).close()
        return True
    except StoreError:
        return False


def open_run(run_dir: Path) -> tuple[RunConfig, LineageStore]:
    """A run to continue: its config and its archive, opened for writing."""
    store = LineageStore.open(run_dir / ARCHIVE)
    return config_from_json(store.run_info()["config_json"]), store


def raise_budget(cfg: RunConfig, store: LineageStore, max_evaluations: int) -> None:
    """`evolve resume --max-evaluations N`: the new budget is stored, so status and later resumes see it."""
    cfg.budget.max_evaluations = max_evaluations
    store.set_config(cfg.model_dump_json())


def llm_tools(cfg: RunConfig) -> LLMTools | None:
    """The run's LLM client and prompts, or None when no model is configured (genetic operators only).

    Raises ConfigError/PromptError for a missing key variable or a broken template: call it
    before anything is created so a bad LLM setup costs nothing.
    """
    if not cfg.llm.models:
        return None
    if not uses_llm(cfg.operators):
        raise ConfigError(
            f"llm.models is set but no LLM operator has a positive weight in operators.weights "
            f"({', '.join(LLM_OPERATORS)})"
        )
    client = LLMClient(cfg.llm, cfg.budget)
    key_vars = [m.api_key_env for m in cfg.llm.models if m.api_key_env]
    return LLMTools(client, PromptLibrary(cfg.llm.prompts_dir), cfg.llm, secret_values(key_vars) + client.secrets)


def operators_line(cfg: RunConfig, tools: LLMTools | None) -> str:
    """What will mutate, for the line printed at start."""
    used = [n for n, w in cfg.operators.weights.items() if w > 0 and (tools or n not in LLM_OPERATORS)]
    if tools is None:
        return f"operators: {', '.join(used)} (genetic operators only: no LLM configured, llm.models is empty)"
    models = ", ".join(m.model for m in cfg.llm.models)
    return f"operators: {', '.join(used)}; models: {models} ({cfg.llm.selection})"


def execute(
    cfg: RunConfig,
    store: LineageStore,
    on_progress: Callable[[Progress], None] | None = None,
    tools: LLMTools | None = None,
) -> tuple[Progress, Problem]:
    """Run the loop until the budget is spent or Ctrl-C; everything lands in ``store``."""
    ref = problem_ref(cfg)
    problem = ref.load()
    problem.preflight()
    if tools is None:
        tools = llm_tools(cfg)
    if tools is not None:
        store.add_secrets(tools.secrets)
    # the run directory is invisible to candidates even where it lies inside a folder the jail binds
    backend = make_backend(ref, cfg.evaluator, cfg.controller.max_in_flight, hidden=(str(store.path.parent),))
    store.set_isolation(isolation_record(cfg.evaluator, problem))
    try:
        controller = Controller(cfg, store, problem, backend, on_progress, tools)
    except BaseException:
        backend.close()
        raise

    def stop(signum: int, frame: FrameType | None) -> None:
        if controller.stop_requested:  # second Ctrl-C: stop now; in-flight work re-runs on resume
            raise KeyboardInterrupt
        controller.stop_requested = True

    previous = signal.signal(signal.SIGINT, stop)
    previous_term = signal.signal(signal.SIGTERM, stop)
    now = False
    try:
        progress = controller.run()
    except KeyboardInterrupt:
        now = True  # a second Ctrl-C: what runs is stopped, not waited for
        store.set_state(RunState.INTERRUPTED)
        progress = controller.progress
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
        backend.close(abort=now)
    return progress, problem


def preflight(cfg: RunConfig) -> dict[str, Any]:
    """Before a run is created or resumed: fail closed where the isolation asked for cannot be had (one
    error naming the opt-out), or where the problem lacks something (a baseline to measure first); else what
    candidates will run under."""
    require(cfg.evaluator.isolation)
    problem = problem_ref(cfg).load()
    problem.preflight()
    return isolation_record(cfg.evaluator, problem)


def check_user_program(problem: Problem, path: Path) -> str:
    """A program file a user wants scored (`evolve baselines --program`): readable text that passes the
    problem's static rules as a run's child must (the seeds' imports allowed), else one clear error."""
    from evaluators.static_rules import StaticRuleViolation, check_program, imports_of

    try:
        code = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--program {path}: cannot read it ({exc})") from None
    allowed = problem.allowed_imports.union(*(imports_of(c) for c in problem.seed_programs().values()))
    try:
        check_program(code, allowed, problem.code_rules)
    except SyntaxError as exc:
        raise ConfigError(f"--program {path}: not valid Python (line {exc.lineno}: {exc.msg})") from None
    except StaticRuleViolation as exc:
        raise ConfigError(f"--program {path}: breaks the problem's rules: {exc}") from None
    return code


def isolation_line(record: dict[str, Any]) -> str:
    """The line printed at start (and by `status`): what candidates run under, and a warning where the
    fitness is the candidate's own word."""
    line = f"isolation: {record['summary']}"
    if record.get("fitness") == "self-reported":
        line += (
            "; fitness is self-reported: the candidate shares its evaluator's process and can set its own "
            "score (no jail of its own can be had here)"
        )
    return line


def isolation_record(cfg: EvaluatorConfig, problem: Problem) -> dict[str, Any]:
    """What a run stores of the isolation its candidates ran under, and where its fitness comes from:
    "trusted", or "self-reported" for a peer-layout folder whose candidate shares its evaluator's process
    (no isolation, or no jail of its own to be had here)."""
    isolation = describe(cfg.isolation)
    fitness = problem.fitness_source
    if fitness == "separated":
        fitness = "trusted" if isolation.get("nested") else "self-reported"
    return {**isolation, "fitness": fitness}


def evaluate_all(
    ref: ProblemRef,
    cfg: EvaluatorConfig,
    jobs: Iterable[EvalJob],
    slots: int,
    on_result: Callable[[EvalResult], None] | None = None,
    hidden: tuple[str, ...] = (),
) -> list[EvalResult]:
    """Evaluate jobs outside a run (held-out scoring, the baseline zoo) through a run's own backend and
    cascade, ``slots`` at a time; results in the order the jobs were given."""
    jobs = list(jobs)
    ref.load().preflight()
    backend = make_backend(ref, cfg, slots, hidden)
    results: dict[tuple[int, str], EvalResult] = {}
    try:
        waiting = list(reversed(jobs))
        while waiting or backend.in_flight():
            while waiting and backend.in_flight() < slots:
                backend.submit(waiting.pop())
            for r in backend.wait(timeout=0.5):
                results[(r.program_id, r.kind)] = r
                if on_result:
                    on_result(r)
    finally:
        backend.close()
    return [results[(j.program_id, j.kind)] for j in jobs]
