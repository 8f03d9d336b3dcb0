"""`evolve`: run, resume and inspect evolutions.

Read commands (status, top, show, lineage, diff, export) open the archive read-only and import
only the store and the config: the engine (torch, numpy, ribs, Ray, litellm) is imported by the
commands that run things, inside them, so that reading a 100,000-program archive starts fast.
"""

from __future__ import annotations

import difflib
import enum
import json
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from evolve.errors import UserError
from evolve.jsonsafe import dumps, printable
from evolve.progress import fmt as _fmt

if TYPE_CHECKING:
    from evolve.archive import ArchiveReader
    from evolve.config import RunConfig
    from evolve.controller import Progress
    from evolve.llm.operators import LLMTools
    from evolve.program import Program
    from evolve.store import LineageStore

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="LLM-driven evolutionary search for optimizers and other algorithms.",
)
out = Console(soft_wrap=True)  # plain lines are never wrapped (piped output stays greppable)
err = Console(stderr=True, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
RunDir = Annotated[Path, typer.Argument(help="Run directory (holds archive.sqlite).")]


class RankBy(enum.StrEnum):
    """How `top` and `heldout` rank programs (typer refuses any other value with one line, exit code 2)."""

    VALIDATED = "validated"  # validated programs first, by validated fitness, then the rest by search fitness
    SEARCH = "search"


RankByOpt = Annotated[RankBy, typer.Option(help="'validated' (validated programs first) or 'search'.")]


def user_errors(fn: F) -> F:
    """Turn the errors a user can fix into one line on stderr and exit code 2, no traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (UserError, ConnectionError) as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _print_json(data: Any) -> None:
    print(dumps(data, indent=2))  # strict JSON, for jq and friends


# -- running ------------------------------------------------------------------------------------
def _execute_with_display(cfg: RunConfig, store: LineageStore, run_dir: Path, tools: LLMTools | None) -> None:
    from evolve.progress import ProgressLog, progress_table
    from evolve.runner import execute

    if tools is not None:
        for note in tools.client.start_notes:
            err.print(f"note: {escape(note)}", highlight=False, soft_wrap=True)
    printed = [0]

    def notices(p: Progress) -> None:  # as they happen, above the live table or between the log lines
        for line in p.notices[printed[0] :]:
            err.print(escape(printable(line)), highlight=False, soft_wrap=True)
        printed[0] = len(p.notices)

    if err.is_terminal:
        from rich.live import Live

        with Live(console=err, refresh_per_second=4, transient=False) as live:
            last = [0.0]

            def show(p: Progress) -> None:
                notices(p)
                if time.monotonic() - last[0] > 0.25:
                    last[0] = time.monotonic()
                    live.update(progress_table(p))

            progress, _ = execute(cfg, store, show, tools)
            live.update(progress_table(progress))
    else:
        log = ProgressLog(
            cfg.progress.log_every_evaluations,
            cfg.progress.log_every_seconds,
            lambda line: err.print(escape(line), highlight=False, soft_wrap=True),
        )

        def show_log(p: Progress) -> None:
            notices(p)
            log(p)

        progress, _ = execute(cfg, store, show_log, tools)
        notices(progress)
        log(progress, final=True)
        if progress.stop_reason:
            err.print(f"stopped: {escape(printable(progress.stop_reason))}", highlight=False, soft_wrap=True)
    state = store.run_info()["state"]
    out.print(f"\nrun {state}: {progress.evaluations} evaluations in {run_dir}")
    _top_table(store.top(5, by="validated"), descriptors=False)
    champion = store.champion()
    if champion is not None:
        if champion.validated_fitness is not None:
            out.print(f"champion: {_champion_line(champion.champion_summary())}")
        else:
            out.print(f"best program: {champion.id}, fitness {_fmt(champion.fitness)} (not validated)")
        out.print("\ninspect it with:")
        out.print(
            f"  evolve show {run_dir} {champion.id}\n  evolve lineage {run_dir} {champion.id}\n"
            f"  evolve export {run_dir} {champion.id} -o best.py"
        )
    out.print(f"  evolve top {run_dir}\n  evolve status {run_dir}\n  evolve ui {run_dir}")
    if state == "interrupted":
        out.print(f"  evolve resume {run_dir}   (continue where it stopped)")


@app.command()
@user_errors
def run(
    config: Annotated[Path | None, typer.Argument(help="YAML config (default: built-in defaults).")] = None,
    problem: Annotated[str | None, typer.Option(help="Problem folder (overrides problem.path).")] = None,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", help="Where the archive goes.")] = None,
    max_evaluations: Annotated[int | None, typer.Option(help="Evaluation budget.")] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="Join this Ray cluster (implies evaluator.backend=ray).")
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config key: a.b=value.")] = None,
) -> None:
    """Start a new evolution."""
    from evolve.runner import (
        create_run,
        isolation_line,
        llm_tools,
        load_run_config,
        operators_line,
        preflight,
    )

    overrides = list(set_ or [])
    if problem:
        overrides.append(f"problem.path={problem}")
    if max_evaluations is not None:
        overrides.append(f"budget.max_evaluations={max_evaluations}")
    if ray_address:
        overrides += [f"evaluator.ray_address={ray_address}", "evaluator.backend=ray"]
    cfg, notes = load_run_config(config, overrides)
    for note in notes:
        err.print(f"note: {escape(note)}", highlight=False, soft_wrap=True)
    label = Path(cfg.problem.path).name if cfg.problem.path else cfg.problem.name
    run_dir = run_dir or Path("runs") / time.strftime(f"%Y%m%d-%H%M%S-{label}")
    tools = llm_tools(cfg)  # a missing key or broken template fails here, before anything is created
    isolation = preflight(cfg)  # so does isolation that cannot be had, or a problem not ready to run
    store = create_run(cfg, run_dir)
    err.print(f"run directory: {run_dir}; {operators_line(cfg, tools)}")
    err.print(escape(isolation_line(isolation)), highlight=False)
    _execute_with_display(cfg, store, run_dir, tools)


@app.command()
@user_errors
def resume(
    run_dir: RunDir, max_evaluations: Annotated[int | None, typer.Option(help="Raise the evaluation budget.")] = None
) -> None:
    """Continue a stopped or killed run from its archive."""
    from evolve.runner import isolation_line, llm_tools, open_run, operators_line, preflight, raise_budget

    cfg, store = open_run(run_dir)
    tools = llm_tools(cfg)
    isolation = preflight(cfg)
    if max_evaluations is not None:
        raise_budget(cfg, store, max_evaluations)
    err.print(f"resuming {run_dir}; {operators_line(cfg, tools)}")
    err.print(escape(isolation_line(isolation)), highlight=False)
    _execute_with_display(cfg, store, run_dir, tools)


@app.command()
@user_errors
def migrate(run_dir: RunDir) -> None:
    """Upgrade an archive written by an older evolve, in place."""
    from evolve.schema import SCHEMA_VERSION
    from evolve.store import ARCHIVE, LineageStore

    before = LineageStore.migrate(run_dir / ARCHIVE)
    out.print(
        f"{run_dir}: schema {before} -> {SCHEMA_VERSION}"
        if before != SCHEMA_VERSION
        else f"{run_dir}: already at schema {SCHEMA_VERSION}"
    )


# -- reading ------------------------------------------------------------------------------------
def _open(run_dir: Path) -> ArchiveReader:
    from evolve.report import open_readonly

    return open_readonly(run_dir)


def _program_json(p: Program, with_code: bool = True) -> dict[str, Any]:
    data = p.model_dump(mode="json")
    if not with_code:
        data.pop("code")
        if data.get("llm"):
            data["llm"].pop("prompt", None)
            data["llm"].pop("response", None)
    return data


def _top_table(programs: list[Program], heldout: bool = False, descriptors: bool = True) -> None:
    validated = any(p.validated_fitness is not None for p in programs)
    t = Table()
    for name in (
        "id",
        "fitness",
        *(["validated (95% over seeds)"] if validated else []),
        *(["held-out (95% over seeds)"] if heldout else []),
        "island",
        "gen",
        "operator",
        "stage",
    ):
        t.add_column(name, no_wrap=True, min_width=len(name) if len(name) < 12 else 9)
    if descriptors:
        t.add_column("descriptors", overflow="fold")
    for p in programs:
        t.add_row(
            str(p.id),
            _fmt(p.fitness, 5),
            *([_with_interval(p.validated_fitness, p.tier("validate").get("interval"))] if validated else []),
            *([_with_interval(p.heldout_fitness, p.tier("heldout").get("interval"))] if heldout else []),
            str(p.island),
            str(p.generation),
            p.operator,
            p.stage_reached or "-",
            *([", ".join(f"{k}={v:.3g}" for k, v in p.descriptors.items())] if descriptors else []),
        )
    out.print(t)


def _champion_line(c: dict[str, Any]) -> str:
    text = f"program {c['id']}, validated fitness {_with_interval(c['validated_fitness'], c['validated_interval'])}"
    if c.get("confirmed_fitness") is not None:
        text += f", confirmed on fresh seeds {_with_interval(c['confirmed_fitness'], c['confirmed_interval'])}"
    return text + f" (search fitness {_fmt(c['fitness'])})"


@app.command()
@user_errors
def status(run_dir: RunDir, json_: JsonOpt = False) -> None:
    """Run state, counts by status/failure/operator, island counters, events, champion, LLM spend."""
    from evolve.report import run_config, status_report

    store = _open(run_dir)
    cfg = run_config(store)
    data = status_report(cfg, store, run_dir)
    if json_:
        return _print_json(data)
    t = Table(show_header=False, box=None)
    for key in ("state", "stop_reason", "problem", "seed", "evaluations", "budget", "best"):
        if data[key] is not None:
            t.add_row(key, printable(str(data[key])))
    if data["champion"] is not None:
        c = data["champion"]
        t.add_row(
            "champion",
            _champion_line(c)
            if c["validated_fitness"] is not None
            else f"program {c['id']}, fitness {_fmt(c['fitness'])} (not validated)",
        )
    isolation = data["isolation"]
    t.add_row(
        "isolation",
        "unknown (recorded since schema 3)"
        if isolation is None
        else isolation["summary"]
        + ("; fitness SELF-REPORTED by the candidate" if isolation.get("fitness") == "self-reported" else ""),
    )
    for key in ("by_status", "failures", "rejections", "operators", "events"):
        t.add_row(key, ", ".join(f"{k}: {v}" for k, v in sorted(data[key].items(), key=str)) or "none")
    for op, o in sorted(data["operator_outcomes"].items()):
        t.add_row(
            f"operator {op}",
            f"{o['written']} written: {o['refused']} refused, {o['duplicates']} duplicates, "
            f"{o['failed_before_training']} failed before training, {o['trained']} trained, "
            f"{o['improved']} better than their parent",
        )
    for i, row in sorted(data["islands"].items()):
        t.add_row(
            f"island {i}",
            f"best {row['best_fitness']} (program {row['best_program_id']}), "
            f"{row['evaluations']} evaluations, {row['since_improvement']} since improvement",
        )
    llm = data["llm"]
    for model, s in llm["spend"].items():
        cost = "price unknown" if s["cost"] is None else f"${s['cost']:.4f}"
        t.add_row(
            f"llm {model}",
            f"{s['attempts']} calls ({s['errors']} failed{_causes(s.get('failed_by_cause'))}), "
            f"{s['tokens_in']} tokens in, "
            f"{s['tokens_out']} out, {cost}, next-pick probability {llm['preferences'].get(model, 0):.2f}",
        )
    if llm["models"]:
        t.add_row(
            "llm budget",
            f"{llm['tokens']} tokens / {cfg.budget.max_llm_tokens or 'no limit'}, "
            f"${llm['cost']:.4f} / {cfg.budget.max_llm_cost or 'no limit'}; {llm['insights']} insight notes",
        )
    out.print(t)


@app.command()
@user_errors
def top(
    run_dir: RunDir,
    n: Annotated[int, typer.Option("-n", help="How many.")] = 10,
    heldout: Annotated[
        bool, typer.Option("--heldout", help="Also show held-out fitness (computed by `evolve heldout`).")
    ] = False,
    by: RankByOpt = RankBy.VALIDATED,
    json_: JsonOpt = False,
) -> None:
    """The best programs: validated ones first by validated fitness, then the rest by search fitness."""
    store = _open(run_dir)
    programs = store.top(n, by=by.value)
    if json_:
        return _print_json([_program_json(p, with_code=False) for p in programs])
    _top_table(programs, heldout)


@app.command()
@user_errors
def show(
    run_dir: RunDir,
    program_id: int,
    json_: JsonOpt = False,
    prompt: Annotated[bool, typer.Option("--prompt", help="Also print the LLM prompt that wrote it.")] = False,
) -> None:
    """Everything stored about one program (with the LLM reply that wrote it, if any)."""
    from rich.syntax import Syntax

    from evolve.report import program

    store = _open(run_dir)
    p = program(store, program_id)
    if json_:
        return _print_json({**_program_json(p), "llm_calls": store.llm_calls(program_id)})
    t = Table(show_header=False, box=None)
    for key in (
        "id",
        "status",
        "reason",
        "failure_kind",
        "rejection",
        "duplicate_of",
        "fitness",
        "validated_fitness",
        "heldout_fitness",
        "stage_reached",
        "operator",
        "operator_info",
        "parent_ids",
        "island",
        "generation",
        "descriptors",
        "fingerprint",
        "eval_seconds",
    ):
        value = getattr(p, key)
        if value not in (None, {}, []):
            t.add_row(key, escape(printable(str(value))))
    if p.llm is not None:
        calls = store.llm_calls(program_id)
        cost = "price unknown" if p.llm.cost is None else f"${p.llm.cost:.5f}"
        t.add_row(
            "llm usage",
            f"{escape(p.llm.model)}: {len(calls)} attempt(s), {p.llm.tokens_in} tokens in, "
            f"{p.llm.tokens_out} out, {cost}, {p.llm.latency_s or 0:.2f} s",
        )
    out.print(t)
    out.print(Syntax(printable(p.code), "python", line_numbers=True))
    if p.metrics:
        out.print_json(data=p.metrics)
    if p.output:
        out.print("[bold]output[/]")
        out.print(printable(p.output), markup=False, highlight=False)
    if prompt and p.llm is not None and p.llm.prompt:
        for message in json.loads(p.llm.prompt):
            out.print(f"[bold]LLM prompt ({escape(str(message.get('role')))})[/]")
            out.print(printable(str(message.get("content", ""))), markup=False, highlight=False)
    if p.llm is not None and p.llm.response is not None:
        out.print("[bold]LLM reply[/]")
        out.print(printable(p.llm.response), markup=False, highlight=False)


@app.command()
@user_errors
def lineage(run_dir: RunDir, program_id: int, json_: JsonOpt = False) -> None:
    """Ancestry of a program back to the seed (seed first): operator and fitness change at each step."""
    from evolve.report import lineage_report

    store = _open(run_dir)
    steps = lineage_report(store, program_id)
    if json_:
        return _print_json(steps)
    # Plain lines, not a nested tree: a lineage can be tens of thousands of steps deep.
    lines = [f"lineage of program {program_id} ({len(steps) - 1} steps, seed first)"]
    for s in steps:
        delta = "" if s["fitness_change"] is None else f" ({s['fitness_change']:+.4g})"
        mates = "".join(f" x #{m['id']}" for m in s["mates"])
        model = f" [{s['llm_model']}]" if s["llm_model"] else ""
        lines.append(f"#{s['id']} {s['operator']}{mates}{model} gen {s['generation']}: {_fmt(s['fitness'], 5)}{delta}")
    sys.stdout.write("\n".join(lines) + "\n")


@app.command()
@user_errors
def diff(run_dir: RunDir, a: int, b: int, json_: JsonOpt = False) -> None:
    """Unified diff between two programs' code."""
    from rich.syntax import Syntax

    from evolve.report import program

    store = _open(run_dir)
    pa, pb = program(store, a), program(store, b)
    text = "".join(
        difflib.unified_diff(
            pa.code.splitlines(keepends=True),
            pb.code.splitlines(keepends=True),
            fromfile=f"program {a}",
            tofile=f"program {b}",
        )
    )
    if json_:
        return _print_json({"a": a, "b": b, "diff": text})
    out.print(Syntax(text or "(identical)\n", "diff"))


@app.command()
@user_errors
def export(
    run_dir: RunDir,
    program_id: int,
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
    json_: JsonOpt = False,
) -> None:
    """Write a program's code to a file."""
    from evolve.report import program

    store = _open(run_dir)
    p = program(store, program_id)
    output.write_text(p.code)
    if json_:
        return _print_json(
            {"id": p.id, "path": str(output), "fitness": p.fitness, "validated_fitness": p.validated_fitness}
        )
    out.print(f"wrote program {p.id} (fitness {p.fitness}, validated {p.validated_fitness}) to {output}")


@app.command()
@user_errors
def problems(
    check: Annotated[
        Path | None,
        typer.Option("--check", help="Check a problem folder: its layout, then its seed program once in the sandbox."),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """The built-in problems (or, with --check DIR, whether a folder will run)."""
    from evolve.loader import builtin_problems, load_problem_folder

    if check is not None:
        return _check_problem(check, json_)
    rows: list[dict[str, Any]] = []
    for name, folder in builtin_problems().items():
        prob = load_problem_folder(folder, {})
        rows.append(
            {
                "name": name,
                "version": prob.version,
                "path": str(folder),
                "stages": [s.name for s in prob.stages],
                "validate": prob.validate.name if prob.validate else None,
                "heldout": prob.heldout.name if prob.heldout else None,
                "descriptors": [d.name for d in prob.descriptors],
                "seeds": list(prob.seed_programs()),
                "description": prob.description,
            }
        )
    if json_:
        return _print_json(rows)
    t = Table("name", "stages", "seeds", "description")
    for r in rows:
        t.add_row(r["name"], ", ".join(r["stages"]), ", ".join(r["seeds"]), r["description"])
    out.print(t)


def _check_problem(folder: Path, json_: bool) -> None:
    from evaluators.jobs import EvalJob
    from evaluators.static_rules import StaticRuleViolation, check_program, imports_of
    from evolve.config import EvaluatorConfig
    from evolve.loader import ProblemRef, load_problem_folder, problem_layout, resolve_problem
    from evolve.problem import ProblemError
    from evolve.runner import evaluate_all

    folder = resolve_problem("", str(folder))
    layout = problem_layout(folder)
    problem = load_problem_folder(folder, {})
    name, seed = next(iter(problem.seed_programs().items()))
    try:
        check_program(seed, problem.allowed_imports | imports_of(seed), problem.code_rules)
    except (SyntaxError, StaticRuleViolation) as exc:
        raise ProblemError(f"{folder}: the seed program {name!r} breaks a static rule: {exc}") from None
    result = evaluate_all(ProblemRef(str(folder), {}), EvaluatorConfig(), [EvalJob(0, seed)], 1)[0]
    report: dict[str, Any] = {
        "folder": str(folder),
        "layout": layout,
        "problem": problem.name,
        "seed": name,
        "stages": [s.name for s in problem.stages],
        "ok": result.ok,
        "fitness": result.fitness,
        "metrics": result.metrics,
        "failure_kind": result.failure_kind,
        "reason": result.reason,
        "output": result.output[-2000:],
        "seconds": round(result.seconds, 2),
    }
    if json_:
        _print_json(report)
    else:
        out.print(
            f"{folder}: {layout} layout, problem {problem.name}, seed {name!r}, stages {', '.join(report['stages'])}",
            highlight=False,
            markup=False,
        )
        if result.ok:
            out.print(f"the seed runs: fitness {result.fitness:.6g} in {result.seconds:.1f} s", highlight=False)
            out.print_json(data=result.metrics)
        else:
            out.print(
                f"the seed fails ({result.failure_kind}): {printable(result.reason or '')}",
                highlight=False,
                markup=False,
            )
            if result.output:
                out.print(printable(result.output[-2000:]), highlight=False, markup=False)
    if not result.ok:
        raise typer.Exit(2)


@app.command()
@user_errors
def heldout(
    run_dir: RunDir,
    n: Annotated[int, typer.Option("-n", help="How many of the best.")] = 3,
    by: RankByOpt = RankBy.VALIDATED,
    parallel: Annotated[int, typer.Option(help="Evaluations at once.")] = 2,
    json_: JsonOpt = False,
) -> None:
    """Score the best programs on the problem's held-out tasks: stored, never used for selection."""
    from evolve import rescore

    rows = rescore.heldout(run_dir, n, by.value, parallel)
    if json_:
        return _print_json(rows)
    t = Table("id", "fitness (search)", "validated", "held-out", "held-out detail")
    for row in rows:
        h = row["heldout"]
        detail = (
            ", ".join(f"{k}: {v:.3g}" for k, v in row["task_scores"].items())
            if "fitness" in h
            else escape(printable(str(h.get("reason", ""))))
        )
        t.add_row(
            str(row["id"]),
            _fmt(row["fitness"]),
            _fmt(row["validated_fitness"]),
            _with_interval(h["fitness"], row["interval"]) if "fitness" in h else f"failed ({h['failure_kind']})",
            detail,
        )
    out.print(t)


@app.command()
@user_errors
def baselines(
    problem: Annotated[str, typer.Argument(help="Built-in problem name or problem folder.")] = "optimizer_discovery",
    stages: Annotated[
        str, typer.Option(help="Comma-separated roles to score: search, validate, confirm, heldout.")
    ] = "search",
    program: Annotated[
        list[Path] | None,
        typer.Option("--program", help="Score this program file (repeatable) instead of the problem's seeds."),
    ] = None,
    option: Annotated[list[str] | None, typer.Option("--option", help="A problem option: key=value (YAML).")] = None,
    parallel: Annotated[int, typer.Option(help="Evaluations at once.")] = 2,
    timeout_s: Annotated[float | None, typer.Option(help="Caps each stage's wall-clock limit.")] = None,
    warm: Annotated[bool, typer.Option(help="Fork from warm servers (else a fresh interpreter per stage).")] = True,
    json_: JsonOpt = False,
) -> None:
    """Score the seed programs of a problem (or programs of your own) through the sandboxed cascade, exactly as
    a run scores its children, and print them side by side."""
    from evolve import rescore
    from evolve.config import EvaluatorConfig, apply_override

    options: dict[str, Any] = {}
    for assignment in option or []:
        apply_override(options, assignment, model=None)
    kinds = rescore.parse_roles(stages)
    ordered = rescore.programs(
        problem, kinds, program, options, parallel, EvaluatorConfig(timeout_s=timeout_s, warm_start=warm)
    )
    if json_:
        return _print_json(ordered)
    task_names = list(dict.fromkeys(t for row in ordered for t in row["task_scores"]))
    t = Table("program", *[str(k) for k in kinds], *task_names)
    for row in ordered:
        cells = []
        for k in kinds:
            entry = row[str(k)]
            cells.append(
                _with_interval(entry["fitness"], entry["interval"])
                if entry["fitness"] is not None
                else f"failed: {escape(printable(str(entry['failure'])))[:60]}"
            )
        t.add_row(row["seed"], *cells, *[_fmt(row["task_scores"].get(n), 3) for n in task_names])
    out.print(t)


def _causes(by_cause: dict[str, int] | None) -> str:
    return "".join(f", {n} {cause}" for cause, n in sorted((by_cause or {}).items()))


def _with_interval(value: float | None, interval: list[float] | None) -> str:
    """A fitness and its 95% interval over seeds, as `evolve top`, status and the report print them."""
    if value is None:
        return "-"
    return f"{value:.4g} [{interval[0]:.3g}, {interval[1]:.3g}]" if interval else f"{value:.4g}"


@app.command()
@user_errors
def ui(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories (several: a comparison page too).")],
    host: Annotated[
        str, typer.Option(help="Address to bind; anything but loopback needs the printed token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free one).")] = 8765,
    open_: Annotated[bool, typer.Option("--open", help="Open it in a browser.")] = False,
    token: Annotated[
        bool,
        typer.Option(
            "--token", help="Require the printed access token on loopback too (a machine shared with other users)."
        ),
    ] = False,
) -> None:
    """Serve a live web view of runs (read-only; new results appear while a run goes on)."""
    from evolve.ui.server import serve

    def ready(url: str) -> None:
        err.print(f"evolve ui: {url}" + ("  (the token is required: keep it private)" if "token=" in url else ""))
        err.print("Ctrl-C stops it.")
        if open_:
            import webbrowser

            webbrowser.open(url)

    try:
        serve(run_dirs, host, port, ready, token)
    except OSError as exc:
        from evolve.archive import StoreError

        raise StoreError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc})") from None


@app.command()
@user_errors
def report(
    run_dir: RunDir,
    output: Annotated[Path, typer.Option("-o", "--output", help="HTML file to write.")],
    programs: Annotated[
        int, typer.Option(help="Program pages included (the best, plus the champion's ancestry).")
    ] = 50,
) -> None:
    """Write the web view of a run as one self-contained HTML file (no server, no network needed)."""
    from evolve.ui.report import build

    html = build(run_dir, programs)
    output.write_text(html)
    out.print(f"wrote {output} ({len(html) / 1e6:.1f} MB)")


if __name__ == "__main__":
    app()
