"""Opening, creating and executing a run directory: the glue between the CLI and the engine."""

from __future__ import annotations

import importlib.metadata
import platform
import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from evaluators.backend import make_backend
from evolve.config import ConfigError, RunConfig, config_from_json
from evolve.controller import Controller, Progress
from evolve.llm.client import LLMClient
from evolve.llm.prompts import PromptLibrary
from evolve.secrets import secret_values
from evolve.mutation.llm_ops import LLMTools
from evolve.mutation.operators import LLM_OPERATORS
from evolve.problem import Problem, ProblemRef, load_problem_folder, resolve_problem
from evolve.store import LineageStore, StoreError

ARCHIVE = "archive.sqlite"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("evolve", "ribs", "ray", "torch", "pydantic", "numpy"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def problem_ref(cfg: RunConfig) -> ProblemRef:
    folder = resolve_problem(cfg.problem.name, cfg.problem.path)
    return ProblemRef(str(folder), dict(cfg.problem.options))


def create_run(cfg: RunConfig, run_dir: Path) -> LineageStore:
    """A new run directory with its archive; refuses to touch an existing archive."""
    if (run_dir / ARCHIVE).exists():
        if _has_run_record(run_dir / ARCHIVE):
            raise StoreError(f"{run_dir}: already holds a run; use `evolve resume {run_dir}` to continue it")
        # Killed while being created (before its first commit): nothing stored, start afresh.
        for suffix in ("", "-wal", "-shm"):
            (run_dir / (ARCHIVE + suffix)).unlink(missing_ok=True)
    ref = problem_ref(cfg)
    cfg.problem.path = ref.folder  # resume must find the same problem even if the cwd changes
    problem = ref.load()
    run_dir.mkdir(parents=True, exist_ok=True)
    store = LineageStore(run_dir / ARCHIVE, create=True)
    store.init_run(cfg.model_dump_json(), cfg.seed, problem.name, problem.version, _versions())
    return store


def _has_run_record(path: Path) -> bool:
    store = LineageStore(path)
    try:
        store.run_info()
        return True
    except StoreError:
        return False
    finally:
        store.close()


def open_run(run_dir: Path) -> tuple[RunConfig, LineageStore]:
    store = LineageStore(run_dir / ARCHIVE)
    return config_from_json(store.run_info()["config_json"]), store


def llm_tools(cfg: RunConfig) -> LLMTools | None:
    """The run's LLM client and prompts, or None when no model is configured (genetic operators only).

    Raises ConfigError/PromptError for a missing key variable or a broken template: call it
    before anything is created so a bad LLM setup costs nothing.
    """
    if not cfg.llm.models:
        return None
    if not any(cfg.operators.weights.get(name, 0) > 0 for name in LLM_OPERATORS):
        raise ConfigError(f"llm.models is set but no LLM operator has a positive weight in operators.weights "
                          f"({', '.join(LLM_OPERATORS)})")
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


def execute(cfg: RunConfig, store: LineageStore, on_progress: Callable[[Progress], None] | None = None,
            tools: LLMTools | None = None) -> tuple[Progress, Problem]:
    """Run the loop until the budget is spent or Ctrl-C; everything lands in ``store``."""
    ref = problem_ref(cfg)
    problem = load_problem_folder(Path(ref.folder), ref.options)
    if tools is None:
        tools = llm_tools(cfg)
    backend = make_backend(ref, cfg.evaluator, cfg.controller.max_in_flight)
    controller = Controller(cfg, store, problem, backend, on_progress, tools)

    def stop(signum: int, frame: FrameType | None) -> None:
        if controller.stop_requested:  # second Ctrl-C: stop now; in-flight work re-runs on resume
            raise KeyboardInterrupt
        controller.stop_requested = True

    previous = signal.signal(signal.SIGINT, stop)
    previous_term = signal.signal(signal.SIGTERM, stop)
    try:
        progress = controller.run()
    except KeyboardInterrupt:
        store.set_run_state("interrupted")
        progress = controller.progress
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
        backend.close()
    return progress, problem
