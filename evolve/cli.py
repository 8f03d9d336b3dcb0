"""`evolve`: run, resume and inspect evolutions."""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table
from rich.tree import Tree

from evolve.config import ConfigError, RunConfig, load_config
from evolve.controller import Progress, RunError
from evolve.problem import ProblemError, builtin_problems, load_problem_folder
from evolve.program import Program
from evolve.llm.prompts import PromptError
from evolve.mutation.llm_ops import LLMTools
from evolve.report import lineage_report, program, status_report
from evolve.runner import create_run, execute, llm_tools, open_run, operators_line
from evolve.store import LineageStore, StoreError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="LLM-driven evolutionary search for optimizers and other algorithms.")
out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
RunDir = Annotated[Path, typer.Argument(help="Run directory (holds archive.sqlite).")]


def user_errors(fn: F) -> F:
    """Turn the errors a user can fix into one line on stderr and exit code 2, no traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ConfigError, ProblemError, StoreError, RunError, ConnectionError, PromptError) as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


# -- running ------------------------------------------------------------------------------------
def _progress_table(p: Progress) -> Table:
    t = Table(title="evolve", show_header=False, box=None)
    t.add_row("evaluations", f"{p.evaluations} / {p.budget}  (in flight {p.in_flight})")
    t.add_row("best fitness", "-" if p.best_fitness is None else f"{p.best_fitness:.5g}  (program {p.best_program_id})")
    t.add_row("best per island", "  ".join("-" if b is None else f"{b:.4g}" for b in p.island_best))
    t.add_row("failures", ", ".join(f"{k}: {v}" for k, v in sorted(p.failures.items())) or "none")
    t.add_row("rejected", ", ".join(f"{k}: {v}" for k, v in sorted(p.rejections.items())) or "none")
    t.add_row("evaluations / min", f"{p.per_minute:.1f}")
    if p.llm_tokens is not None:
        t.add_row("llm spend", f"{p.llm_tokens} tokens, ${p.llm_cost or 0:.4f} (calls of unknown price count 0)")
    if p.stop_reason:
        t.add_row("stopped", p.stop_reason)
    return t


def _execute_with_display(cfg: RunConfig, store: LineageStore, run_dir: Path, tools: LLMTools | None) -> None:
    with Live(console=err, refresh_per_second=4, transient=False) as live:
        last = [0.0]

        def show(p: Progress) -> None:
            if time.monotonic() - last[0] > 0.25:
                last[0] = time.monotonic()
                live.update(_progress_table(p))

        progress, _ = execute(cfg, store, show, tools)
        live.update(_progress_table(progress))
    state = store.run_info()["state"]
    out.print(f"\nrun {state}: {progress.evaluations} evaluations in {run_dir}")
    _top_table(store.top(5))
    best = store.top(1)
    out.print("\ninspect it with:")
    if best:
        out.print(f"  evolve show {run_dir} {best[0].id}\n  evolve lineage {run_dir} {best[0].id}\n"
                  f"  evolve export {run_dir} {best[0].id} -o best.py")
    out.print(f"  evolve top {run_dir}\n  evolve status {run_dir}")
    if state == "interrupted":
        out.print(f"  evolve resume {run_dir}   (continue where it stopped)")


@app.command()
@user_errors
def run(
    config: Annotated[Path | None, typer.Argument(help="YAML config (default: built-in defaults).")] = None,
    problem: Annotated[str | None, typer.Option(help="Problem folder (overrides problem.path).")] = None,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", help="Where the archive goes.")] = None,
    max_evaluations: Annotated[int | None, typer.Option(help="Evaluation budget.")] = None,
    ray_address: Annotated[str | None, typer.Option(help="Join this Ray cluster (implies evaluator.backend=ray).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config key: a.b=value.")] = None,
) -> None:
    """Start a new evolution."""
    overrides = list(set_ or [])
    if problem:
        overrides.append(f"problem.path={problem}")
    if max_evaluations is not None:
        overrides.append(f"budget.max_evaluations={max_evaluations}")
    if ray_address:
        overrides += [f"evaluator.ray_address={ray_address}", "evaluator.backend=ray"]
    cfg = load_config(config, overrides)
    label = Path(cfg.problem.path).name if cfg.problem.path else cfg.problem.name
    run_dir = run_dir or Path("runs") / time.strftime(f"%Y%m%d-%H%M%S-{label}")
    tools = llm_tools(cfg)  # a missing key or broken template fails here, before anything is created
    store = create_run(cfg, run_dir)
    err.print(f"run directory: {run_dir}; {operators_line(cfg, tools)}")
    _execute_with_display(cfg, store, run_dir, tools)


@app.command()
@user_errors
def resume(run_dir: RunDir,
           max_evaluations: Annotated[int | None, typer.Option(help="Raise the evaluation budget.")] = None) -> None:
    """Continue a stopped or killed run from its archive."""
    cfg, store = open_run(run_dir)
    if max_evaluations is not None:
        cfg.budget.max_evaluations = max_evaluations
    tools = llm_tools(cfg)
    err.print(f"resuming {run_dir}; {operators_line(cfg, tools)}")
    _execute_with_display(cfg, store, run_dir, tools)


# -- reading ------------------------------------------------------------------------------------
def _program_json(p: Program, with_code: bool = True) -> dict[str, Any]:
    data = p.model_dump(mode="json")
    if not with_code:
        data.pop("code")
        data.pop("llm_prompt")
        data.pop("llm_response")
    return data


def _top_table(programs: list[Program]) -> None:
    t = Table("id", "fitness", "island", "gen", "operator", "stage", "descriptors")
    for p in programs:
        t.add_row(str(p.id), f"{p.fitness:.5g}", str(p.island), str(p.generation), p.operator,
                  p.stage_reached or "-", ", ".join(f"{k}={v:.3g}" for k, v in p.descriptors.items()))
    out.print(t)


@app.command()
@user_errors
def status(run_dir: RunDir, json_: JsonOpt = False) -> None:
    """Run state, counts by status/failure/operator, island counters and events."""
    cfg, store = open_run(run_dir)
    data = status_report(cfg, store, run_dir)
    if json_:
        return _print_json(data)
    t = Table(show_header=False, box=None)
    for key in ("state", "problem", "seed", "evaluations", "budget", "best"):
        t.add_row(key, str(data[key]))
    for key in ("by_status", "failures", "rejections", "operators", "events"):
        t.add_row(key, ", ".join(f"{k}: {v}" for k, v in sorted(data[key].items(), key=str)) or "none")
    for i, row in sorted(data["islands"].items()):
        t.add_row(f"island {i}", f"best {row['best_fitness']} (program {row['best_program_id']}), "
                  f"{row['evaluations']} evaluations, {row['since_improvement']} since improvement")
    llm = data["llm"]
    for model, s in llm["spend"].items():
        cost = "price unknown" if s["cost"] is None else f"${s['cost']:.4f}"
        t.add_row(f"llm {model}", f"{s['attempts']} calls ({s['errors']} failed), {s['tokens_in']} tokens in, "
                  f"{s['tokens_out']} out, {cost}, next-pick probability {llm['preferences'].get(model, 0):.2f}")
    if llm["models"]:
        t.add_row("llm budget", f"{llm['tokens']} tokens / {cfg.budget.max_llm_tokens or 'no limit'}, "
                  f"${llm['cost']:.4f} / {cfg.budget.max_llm_cost or 'no limit'}; {llm['insights']} insight notes")
    out.print(t)


@app.command()
@user_errors
def top(run_dir: RunDir, n: Annotated[int, typer.Option("-n", help="How many.")] = 10, json_: JsonOpt = False) -> None:
    """The best programs of the run."""
    _, store = open_run(run_dir)
    programs = store.top(n)
    if json_:
        return _print_json([_program_json(p, with_code=False) for p in programs])
    _top_table(programs)


@app.command()
@user_errors
def show(run_dir: RunDir, program_id: int, json_: JsonOpt = False,
         prompt: Annotated[bool, typer.Option("--prompt", help="Also print the LLM prompt that wrote it.")] = False
         ) -> None:
    """Everything stored about one program (with the LLM reply that wrote it, if any)."""
    _, store = open_run(run_dir)
    p = program(store, program_id)
    if json_:
        return _print_json({**_program_json(p), "llm_calls": store.llm_calls(program_id)})
    t = Table(show_header=False, box=None)
    for key in ("id", "status", "reason", "failure_kind", "duplicate_of", "fitness", "stage_reached", "operator",
                "operator_info", "parent_ids", "island", "generation", "descriptors", "eval_seconds", "llm_model"):
        value = getattr(p, key)
        if value not in (None, {}, []):
            t.add_row(key, str(value))
    if p.llm_model:
        calls = store.llm_calls(program_id)
        cost = "price unknown" if p.llm_cost is None else f"${p.llm_cost:.5f}"
        t.add_row("llm usage", f"{len(calls)} attempt(s), {p.llm_tokens_in} tokens in, {p.llm_tokens_out} out, "
                  f"{cost}, {p.llm_latency_s or 0:.2f} s")
    out.print(t)
    out.print(Syntax(p.code, "python", line_numbers=True))
    if p.metrics:
        out.print_json(data=p.metrics)
    if p.output:
        out.print("[bold]output[/]")
        out.print(p.output, markup=False, highlight=False)
    if prompt and p.llm_prompt:
        for message in json.loads(p.llm_prompt):
            out.print(f"[bold]LLM prompt ({message.get('role')})[/]")
            out.print(message.get("content", ""), markup=False, highlight=False)
    if p.llm_response is not None:
        out.print("[bold]LLM reply[/]")
        out.print(p.llm_response, markup=False, highlight=False)


@app.command()
@user_errors
def lineage(run_dir: RunDir, program_id: int, json_: JsonOpt = False) -> None:
    """Ancestry of a program back to the seed: operator and fitness change at each step."""
    _, store = open_run(run_dir)
    node = lineage_report(store, program_id)
    if json_:
        return _print_json(node)
    chain = []
    while node:
        chain.append(node)
        node = node.get("parent")
    tree = Tree("lineage (seed first)")
    branch = tree
    for n in reversed(chain):
        fit = "-" if n["fitness"] is None else f"{n['fitness']:.5g}"
        delta = "" if n["fitness_change"] is None else f" ({n['fitness_change']:+.4g})"
        mates = "".join(f" x #{m['id']}" for m in n.get("mates", []))
        branch = branch.add(f"#{n['id']} {n['operator']}{mates} gen {n['generation']}: {fit}{delta}")
    out.print(tree)


@app.command()
@user_errors
def diff(run_dir: RunDir, a: int, b: int, json_: JsonOpt = False) -> None:
    """Unified diff between two programs' code."""
    _, store = open_run(run_dir)
    pa, pb = program(store, a), program(store, b)
    text = "".join(difflib.unified_diff(pa.code.splitlines(keepends=True), pb.code.splitlines(keepends=True),
                                        fromfile=f"program {a}", tofile=f"program {b}"))
    if json_:
        return _print_json({"a": a, "b": b, "diff": text})
    out.print(Syntax(text or "(identical)\n", "diff"))


@app.command()
@user_errors
def export(run_dir: RunDir, program_id: int,
           output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
           json_: JsonOpt = False) -> None:
    """Write a program's code to a file."""
    _, store = open_run(run_dir)
    p = program(store, program_id)
    output.write_text(p.code)
    if json_:
        return _print_json({"id": p.id, "path": str(output), "fitness": p.fitness})
    out.print(f"wrote program {p.id} (fitness {p.fitness}) to {output}")


@app.command()
@user_errors
def problems(json_: JsonOpt = False) -> None:
    """The built-in problems."""
    rows = []
    for name, folder in builtin_problems().items():
        prob = load_problem_folder(folder, {})
        rows.append({"name": name, "version": prob.version, "path": str(folder),
                     "stages": [s.name for s in prob.stages], "descriptors": [d.name for d in prob.descriptors],
                     "seeds": list(prob.seed_programs()), "description": prob.description})
    if json_:
        return _print_json(rows)
    t = Table("name", "stages", "seeds", "description")
    for r in rows:
        t.add_row(r["name"], ", ".join(r["stages"]), ", ".join(r["seeds"]), r["description"])
    out.print(t)


@app.command()
@user_errors
def heldout(run_dir: RunDir, n: Annotated[int, typer.Option("-n", help="How many of the best.")] = 3,
            json_: JsonOpt = False) -> None:
    """Score the best programs on the problem's held-out tasks (stored, never used for selection)."""
    from evaluators.backend import limits_from
    from evaluators.sandbox import Sandbox
    from evolve.runner import problem_ref

    cfg, store = open_run(run_dir)
    ref = problem_ref(cfg)
    problem = ref.load()
    if problem.heldout is None:
        raise ProblemError(f"problem {problem.name} declares no held-out stage")
    sandbox = Sandbox(limits_from(cfg.evaluator), isolate=cfg.evaluator.isolation)
    rows = []
    for p in store.top(n):
        run = sandbox.run(ref.folder, ref.options, p.code, problem.heldout.name, problem.heldout.timeout_s)
        if run.artifacts is None:
            result: dict[str, Any] = {"failure_kind": str(run.failure), "reason": run.message}
        else:
            score = problem.score(p.code, problem.heldout.name, run.artifacts)
            result = {"fitness": score.fitness, "metrics": score.metrics}
        store.record_heldout(p.id, result)  # type: ignore[arg-type]
        rows.append({"id": p.id, "fitness": p.fitness, "heldout": result})
    if json_:
        return _print_json(rows)
    t = Table("id", "fitness (selection)", "held-out fitness", "held-out detail")
    for row in rows:
        h = row["heldout"]
        detail = ", ".join(f"{k}: {v['score']:.3g}" for k, v in h.get("metrics", {}).get("tasks", {}).items()) \
            if "fitness" in h else h.get("reason", "")
        t.add_row(str(row["id"]), f"{row['fitness']:.4g}",
                  f"{h['fitness']:.4g}" if "fitness" in h else f"failed ({h['failure_kind']})", detail)
    out.print(t)


@app.command()
@user_errors
def baselines(
    problem: Annotated[str, typer.Argument(help="Built-in problem name or problem folder.")] = "optimizer_discovery",
    parallel: Annotated[int, typer.Option(help="Evaluations at once.")] = 2,
    timeout_s: Annotated[float, typer.Option(help="Wall-clock limit per stage.")] = 600.0,
    warm: Annotated[bool, typer.Option(help="Fork from warm servers (else a fresh interpreter per stage).")] = True,
    json_: JsonOpt = False,
) -> None:
    """Evaluate every seed program of a problem through the sandboxed cascade and print the scores."""
    from concurrent.futures import ThreadPoolExecutor

    from evaluators.backend import limits_from
    from evaluators.cascade import evaluate_cascade
    from evolve.config import EvaluatorConfig
    from evolve.problem import ProblemRef, resolve_problem

    folder = resolve_problem(problem, problem if Path(problem).is_dir() else None)
    ref = ProblemRef(str(folder), {})
    seeds = ref.load().seed_programs()
    cfg = EvaluatorConfig(timeout_s=timeout_s, warm_start=warm)
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = {name: pool.submit(evaluate_cascade, i, code, ref, limits_from(cfg), cfg.isolation, cfg.warm_start)
                   for i, (name, code) in enumerate(seeds.items())}
        results = {name: fut.result() for name, fut in futures.items()}
    rows = []
    for name, r in results.items():
        tasks = {t: m["score"] for stage in r.metrics.values() for t, m in stage.get("tasks", {}).items()}
        rows.append({"seed": name, "fitness": r.fitness, "stage_reached": r.stage_reached,
                     "failure_kind": r.failure_kind, "failure": r.reason, "task_scores": tasks,
                     "seconds": r.seconds, "output_chars": len(r.output), "metrics": r.metrics})
    rows.sort(key=lambda row: -(row["fitness"] if row["fitness"] is not None else float("-inf")))
    if json_:
        return _print_json(rows)
    task_names = sorted({t for row in rows for t in row["task_scores"]}, key=lambda t: list(
        next(r for r in rows if t in r["task_scores"])["task_scores"]).index(t))
    t = Table("seed", "fitness", "stage", *task_names, "seconds")
    for row in rows:
        fit = "failed: " + str(row["failure"]) if row["fitness"] is None else f"{row['fitness']:.3f}"
        t.add_row(row["seed"], fit, row["stage_reached"] or "-",
                  *[f"{row['task_scores'][n]:.3f}" if n in row["task_scores"] else "-" for n in task_names],
                  f"{row['seconds']:.1f}")
    out.print(t)


if __name__ == "__main__":
    app()
