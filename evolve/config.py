"""The one config tree of a run.

YAML files and ``--set a.b=c`` overrides map onto :class:`RunConfig`. Every model forbids extra
keys, so a typo is an error naming the key instead of a silently ignored setting. Defaults here
are the documented defaults: ``configs/defaults.yaml`` is generated from them and a test checks
the two stay identical.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evolve.errors import UserError


class ConfigError(UserError, ValueError):
    """A config problem a user can fix; the message names the file and key at fault."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ProblemConfig(_Strict):
    name: str = Field("function_min", description="Built-in problem name (see `evolve problems`).")
    path: str | None = Field(None, description="Folder of an external problem; overrides `name`.")
    seed_program: str | None = Field(
        None, description="Which of the problem's seed programs starts the run (default: its first)."
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Problem-specific options passed to the problem's factory."
    )
    allowed_imports: list[str] = Field(
        default_factory=list,
        description="Modules candidates may import besides the problem's allow-list and "
        "whatever the seed program imports (the sandbox, not this list, contains a hostile program).",
    )


class BudgetConfig(_Strict):
    max_evaluations: int = Field(
        200,
        ge=1,
        description="Stop proposing after this many children reached training (a child that fails before it, "
        "at the behaviour probe, or is a duplicate, is stored but spends none of this).",
    )
    max_proposals: int | None = Field(
        None,
        ge=1,
        description="Stop after this many children were written, whatever became of them (null: 10 x "
        "max_evaluations, at least 1000): a search whose children all fail before training ends, with that "
        "reason.",
    )
    max_wall_seconds: float | None = Field(None, gt=0, description="Stop proposing after this much wall time.")
    max_llm_tokens: int | None = Field(
        None, ge=1, description="Stop proposing once LLM calls have used this many tokens (in + out, whole run)."
    )
    max_llm_cost: float | None = Field(
        None,
        gt=0,
        description="Stop proposing once LLM calls have cost this much (USD, whole run; calls of "
        "unknown price count 0).",
    )
    stop_after_no_improvement: int | None = Field(
        None,
        ge=1,
        description="Stop proposing after this many evaluated children in a row bring no new best search "
        "fitness (over all islands): a plateau.",
    )


# budget.max_proposals when unset: 10 per evaluation, and never so few that children written while the first
# ones train (duplicates of a child still in flight, rejected at once) end a small run
PROPOSALS_PER_EVALUATION, MIN_PROPOSALS = 10, 1000


class ProgressConfig(_Strict):
    """What a run prints while it goes: a live table on a terminal; plain lines otherwise (a log file,
    nohup, CI, a batch scheduler), so that a run without a terminal never looks hung."""

    log_every_evaluations: int = Field(
        25, ge=0, description="Without a terminal: a progress line after this many evaluations (0: never)."
    )
    log_every_seconds: float = Field(
        30.0, ge=0, description="Without a terminal: a progress line at least this often while work runs (0: never)."
    )


class SelectionConfig(_Strict):
    exploit_ratio: float = Field(
        0.7, ge=0, le=1, description="Probability of picking a parent by fitness rank (else uniform over cells)."
    )
    temperature: float = Field(1.0, gt=0, description="Softmax temperature over fitness ranks for exploitation picks.")
    num_inspirations: int = Field(2, ge=0, description="Extra elites handed to operators as context.")
    random_search: bool = Field(
        False, description="Baseline mode: breed every child from the seed program alone (no selection)."
    )


class IslandsConfig(_Strict):
    num_islands: int = Field(3, ge=1, description="Number of independent MAP-Elites islands.")
    migration_interval: int = Field(
        25, ge=1, description="Migrate elites along the ring every this many completed evaluations."
    )
    migration_count: int = Field(1, ge=1, description="Elites copied to the next island at each migration.")
    stagnation_evaluations: int = Field(
        60, ge=1, description="Reset an island that has not improved for this many of its own evaluations."
    )
    selection: SelectionConfig = Field(default_factory=SelectionConfig)


class PolishConfig(_Strict):
    """Tuning a good program's constants with CMA-ES (evolve.mutation.polish): each trial is a child."""

    enabled: bool = Field(
        False,
        description="Polish each island's new best (not itself a polish trial): a CMA-ES run over the float "
        "literals of its EVOLVE blocks on the search fitness, each trial a child (operator 'polish') that "
        "spends the budget.",
    )
    trials: int = Field(12, ge=1, description="Children per polish (CMA-ES samples in generations of `population`).")
    population: int | None = Field(
        None, ge=2, description="Trials per CMA-ES generation (null: CMA-ES's default, 4 + 3 ln(constants))."
    )
    max_active: int = Field(1, ge=1, description="Programs being polished at once.")
    max_constants: int = Field(8, ge=1, description="The first this many float literals of a program are tuned.")
    sigma: float = Field(
        0.5,
        gt=0,
        description="CMA-ES's initial step on the constants' log scale (0.5: a coefficient moves by a factor "
        "of about 1.6, a decay's distance to 1 likewise).",
    )
    max_share: float = Field(
        0.3,
        gt=0,
        le=1,
        description="Polish trials are written only while they are fewer than this share of the children "
        "that spent budget, so the search goes on beside them.",
    )


class OperatorsConfig(_Strict):
    weights: dict[str, float] = Field(
        default_factory=lambda: {
            "ast_mutate": 0.8,
            "ast_crossover": 0.2,
            "llm_diff": 3.0,
            "llm_rewrite": 1.0,
            "llm_crossover": 1.0,
        },
        description="Relative weight of each operator by name: ast_mutate, ast_crossover (genetic) and "
        "llm_diff, llm_rewrite, llm_crossover (used only when llm.models is set).",
    )
    mutations_per_child: int = Field(2, ge=1, description="Max AST edits applied per ast_mutate child.")
    max_attempts: int = Field(
        8, ge=1, description="Retries of a genetic operator to produce a parseable, changed child."
    )
    polish: PolishConfig = Field(default_factory=PolishConfig)

    @field_validator("weights")
    @classmethod
    def _check_weights(cls, weights: dict[str, float]) -> dict[str, float]:
        if not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError("weights must be non-negative with a positive sum")
        return weights


class EvaluatorConfig(_Strict):
    backend: Literal["process", "ray"] = Field(
        "process", description="'process': local child processes; 'ray': Ray tasks (local runtime or cluster)."
    )
    ray_address: str | None = Field(None, description="Existing Ray cluster to join (default: start a local one).")
    isolation: Literal["bubblewrap", "none"] = Field(
        "bubblewrap",
        description="'bubblewrap': each candidate runs in a jail (no network, an allow-list of the "
        "file system, its own PID and user namespaces); a run refuses to start where bubblewrap cannot run. "
        "'none': candidates run as plain child processes that see the host (an explicit opt-out).",
    )
    warm_start: bool = Field(
        True,
        description="Fork each candidate from a warm per-slot server that has the problem loaded "
        "(else start a fresh interpreter per stage). Without bubblewrap or a pids cgroup to contain what a "
        "candidate leaves behind, every stage starts fresh.",
    )
    timeout_s: float | None = Field(
        None,
        gt=0,
        description="Wall-clock limit per stage; the process tree is killed past it. A stage runs "
        "under the smaller of this and its own limit (the problem's); null: the stage's own limit (60 s for a "
        "stage that declares none).",
    )
    memory_mb: int = Field(
        2048,
        ge=64,
        description="Memory of a candidate as a whole (a memory cgroup over all its processes, no "
        "swap, where cgroups are writable) and the address-space limit of each of its processes (CPU jobs).",
    )
    cpu_seconds: int | None = Field(
        None,
        ge=1,
        description="CPU-time limit of each candidate process; null: the stage's wall-clock limit + "
        "5 s. The candidate as a whole gets num_cpus cores (a CPU cgroup).",
    )
    file_mb: int = Field(
        64,
        ge=1,
        description="Largest file a candidate may write, and the most output it may print before it is stopped.",
    )
    disk_mb: int = Field(512, ge=16, description="Size of the jail's /tmp (a tmpfs holding the working directory).")
    max_processes: int = Field(64, ge=4, description="Processes a candidate may have at once (a pids cgroup).")
    max_result_kb: int = Field(1024, ge=16, description="Largest result (its JSON) a candidate stage may hand back.")
    max_artifact_mb: int = Field(
        512,
        ge=1,
        description="Raw-bytes artifacts (e.g. trained parameters) a candidate stage may hand back, together.",
    )
    fingerprint: bool = Field(
        True,
        description="Run the problem's behaviour fingerprint (if it has one) before training: a child that "
        "behaves like an earlier program is stored as its duplicate and not trained.",
    )
    max_output_chars: int = Field(4000, ge=0, description="Captured stdout/stderr kept per evaluation.")
    num_cpus: float = Field(
        1.0, gt=0, description="CPUs per evaluation: reserved on Ray, and the candidate's CPU quota (cgroup)."
    )
    num_gpus: float = Field(0.0, ge=0, description="Ray GPUs per evaluation (fractional to share one GPU).")
    retries_on_worker_lost: int = Field(1, ge=0, description="Re-run an evaluation whose worker died this many times.")
    cache_path: str | None = Field(
        None,
        description="SQLite file of successful results shared across runs: a program some run already "
        "scored on the same problem version and options is not evaluated again (opt-in).",
    )

    @field_validator("isolation", mode="before")
    @classmethod
    def _isolation_from_bool(cls, value: Any) -> Any:
        """Archives written before sandbox v2 stored isolation as a bool."""
        return {True: "bubblewrap", False: "none"}.get(value, value) if isinstance(value, bool) else value


class ValidationConfig(_Strict):
    island_bests: bool = Field(
        True, description="Validate each island's new best (on the problem's validate stage) while the run goes on."
    )
    top_k: int = Field(3, ge=0, description="At the end of a run, validate the best this many by search fitness.")
    max_in_flight: int = Field(
        1, ge=1, description="Validations running at once; they take the evaluation slots after waiting children."
    )
    confirm: bool = Field(
        True,
        description="At the end of a run, re-score the champion on fresh seeds (the problem's confirm stage, "
        "if it has one): the best of several validated programs is biased upward, its confirmation is not.",
    )


class ControllerConfig(_Strict):
    max_in_flight: int = Field(2, ge=1, description="Evaluations kept running at once (no generation barrier).")
    max_pending_proposals: int = Field(
        2,
        ge=1,
        description="LLM children being written (or written and waiting for a slot) on top of the "
        "running evaluations, so model latency overlaps evaluation.",
    )


class ModelConfig(_Strict):
    model: str = Field(
        description="litellm model name, e.g. openai/gpt-4o-mini, anthropic/claude-sonnet-4-5, "
        "gemini/gemini-2.5-flash, openai/<name> with api_base for a local server."
    )
    weight: float = Field(1.0, gt=0, description="Share of LLM calls in the weighted ensemble.")
    temperature: float = Field(0.8, ge=0, description="Sampling temperature.")
    max_tokens: int = Field(4096, ge=16, description="Max tokens of one reply.")
    timeout_s: float = Field(120.0, gt=0, description="Per-attempt timeout of one call.")
    api_base: str | None = Field(None, description="Endpoint URL (local vLLM/Ollama/llama.cpp servers, proxies).")
    api_key_env: str | None = Field(
        None,
        description="Name of the environment variable holding the API key (default: litellm's own lookup, "
        "e.g. OPENAI_API_KEY; no key when api_base is set). The key itself never goes in a config.",
    )
    price_in_per_mtok: float | None = Field(
        None, ge=0, description="USD per million prompt tokens, for models litellm has no price for."
    )
    price_out_per_mtok: float | None = Field(
        None, ge=0, description="USD per million completion tokens, for models litellm has no price for."
    )


class LLMConfig(_Strict):
    models: list[ModelConfig] = Field(
        default_factory=list, description="Models to mutate with; empty = genetic operators only."
    )
    selection: Literal["weighted", "bandit"] = Field(
        "weighted",
        description="'weighted': draw a model by weight; 'bandit': UCB over models on fitness "
        "gain per call (per dollar where prices are known).",
    )
    bandit_exploration: float = Field(1.0, ge=0, description="UCB exploration constant of the bandit.")
    max_concurrency: int = Field(4, ge=1, description="LLM calls in flight at once (all models together).")
    max_retries: int = Field(4, ge=0, description="Retries of a call after 429, 5xx, timeouts or connection errors.")
    unreachable_after: int = Field(
        3,
        ge=0,
        description="Set a model aside for the rest of the invocation after this many calls in a row failed "
        "for no connection, a refused key or no such model (0: never).",
    )
    backoff_s: float = Field(
        1.0,
        ge=0,
        description="First retry delay; doubles per retry, with jitter; a Retry-After header wins when longer.",
    )
    backoff_max_s: float = Field(60.0, ge=0, description="Longest wait between retries.")
    repair: bool = Field(
        True,
        description="Send an LLM child that failed (syntax, static rule, crash, NaN, "
        "contract) back once with its error for a fix.",
    )
    insights_interval: int = Field(
        50,
        ge=0,
        description="Every this many evaluations, an LLM call summarises what worked into a note "
        "that later prompts carry (0 = off).",
    )
    history_length: int = Field(4, ge=0, description="Ancestors described in a prompt (what changed, fitness effect).")
    feedback_chars: int = Field(1500, ge=0, description="Characters of a program's output/error put in a prompt.")
    prompts_dir: str | None = Field(
        None, description="Folder of template files overriding those in prompts/ (same file names)."
    )


class RunConfig(_Strict):
    seed: int = Field(0, description="Master seed of the run's random generator.")
    problem: ProblemConfig = Field(default_factory=ProblemConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    islands: IslandsConfig = Field(default_factory=IslandsConfig)
    operators: OperatorsConfig = Field(default_factory=OperatorsConfig)
    evaluator: EvaluatorConfig = Field(default_factory=EvaluatorConfig)
    controller: ControllerConfig = Field(default_factory=ControllerConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    progress: ProgressConfig = Field(default_factory=ProgressConfig)


def _parse_scalar(text: str) -> Any:
    """Parse an override value the way YAML would (numbers, booleans, lists, null)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_override(data: dict[str, Any], assignment: str, model: type[BaseModel] | None = RunConfig) -> None:
    """Apply one ``a.b.c=value`` override to a raw config dict, in place. Keys are checked against
    ``model`` (the whole config by default; None: a free-form mapping such as problem options)."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected key=value")
    key, value = assignment.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set {assignment!r}: empty key segment")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        if model is not None and part not in model.model_fields:
            raise ConfigError(f"--set {key}: unknown key {'.'.join(parts[: i + 1])!r}")
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {'.'.join(parts[: i + 1])!r} is not a section")
        annotation = model.model_fields[part].annotation if model is not None else None
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    if model is not None and parts[-1] not in model.model_fields:
        raise ConfigError(f"--set {key}: unknown key {key!r}")
    node[parts[-1]] = _parse_scalar(value)


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"{source}: {loc}: {msg}")
    return "\n".join(lines)


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, section by section (operator weights are replaced whole)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "weights" else v
    return out


def load_config(
    path: str | Path | None, overrides: list[str] | None = None, base: dict[str, Any] | None = None
) -> RunConfig:
    """Load a YAML config (or the defaults when ``path`` is None) and apply ``--set`` overrides; ``base``
    (e.g. read from a problem folder's own config) supplies values neither of them sets."""
    data: dict[str, Any] = {}
    source = "config"
    if path is not None:
        source = str(path)
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{source}: no such config file")
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source}: top level must be a mapping")
        data = loaded
    for assignment in overrides or []:
        apply_override(data, assignment)
    if base:
        data = merge(base, data)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None


def config_from_json(text: str) -> RunConfig:
    return RunConfig.model_validate_json(text)


def defaults_yaml() -> str:
    """The default config as YAML, written to ``configs/defaults.yaml``."""
    header = "# The defaults of every config key, generated from evolve/config.py (a test keeps them equal).\n"
    return header + yaml.safe_dump(RunConfig().model_dump(mode="json"), sort_keys=False)
