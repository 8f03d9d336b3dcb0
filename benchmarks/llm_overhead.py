"""LLM operators: the controller's cost per LLM child, and whether model latency overlaps evaluation.

1. Overhead per LLM child, in process (no network): prompt build (system + diff prompt with
   parent, 4 ancestors, 2 inspirations and an insight) + reply parse + diff apply + validation,
   on the optimizer problem's programs; then the same through litellm to a zero-latency scripted
   server on 127.0.0.1 (litellm's own cost per call included).
2. Evaluations per minute on optimizer_discovery (quickstart settings: 1 training seed,
   2 evaluation slots): genetic operators only, and the same scripted LLM answering at once or
   after 2 s. Latency is hidden when the 2 s model keeps the slots as busy as the instant one.

Usage: .venv/bin/python benchmarks/llm_overhead.py [EVALS]   (default 24 evaluations per run)
"""

from __future__ import annotations

import random
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402
from openai_server import OpenAIServer, Reply, Request  # noqa: E402

from evaluators.static_rules import check_program  # noqa: E402
from evolve.config import load_config  # noqa: E402
from evolve.hashing import code_hash  # noqa: E402
from evolve.llm.diff import apply_diff, parse_diff  # noqa: E402
from evolve.llm.operators import LLMTools, _user_prompt, llm_operator, system_prompt  # noqa: E402
from evolve.llm.prompts import PromptLibrary  # noqa: E402
from evolve.loader import load_problem_folder  # noqa: E402
from evolve.mutation.base import OperatorContext  # noqa: E402
from evolve.mutation.blocks import split_blocks  # noqa: E402
from evolve.program import Program  # noqa: E402
from evolve.runner import create_run, execute, llm_tools  # noqa: E402

PROBLEM = ROOT / "problems" / "optimizer_discovery"


def tweak(req: Request) -> Reply:
    """A model that scales the SGD step by a random factor: always a valid, new child."""
    m = re.search(r"# Current program.*?```python\n(.*?)```", req.prompt, re.S)
    if m is None:
        return Reply("- scaling the step helps a little")
    line = re.search(r"\n(    direction = [^\n]*)\n", m.group(1))
    old = line.group(1) if line else "    direction = grad"
    factor = round(random.uniform(0.5, 2.0), 4)
    return Reply(f"Scale the step.\n<<<<<<< SEARCH\n{old}\n=======\n    direction = grad * {factor}\n>>>>>>> REPLACE\n")


def overhead(repeats: int = 200) -> list[tuple[str, float]]:
    problem = load_problem_folder(PROBLEM, {})
    seeds = problem.seed_programs()
    progs = [
        Program(
            id=i,
            code=code,
            operator="seed",
            island=0,
            fitness=0.5 + i / 100,
            metrics={"select": {"mlp_digits": 0.6, "char_lm": 0.5, "seconds": 3.2}},
            output="stage select: ok\n" * 20,
        )
        for i, code in enumerate(seeds.values())
    ]
    cfg = load_config(None, ["llm.models=[{model: openai/scripted, api_base: 'http://127.0.0.1:9/v1'}]"])
    library = PromptLibrary()
    tools = LLMTools(client=None, prompts=library, cfg=cfg.llm, secrets=["x" * 20])  # type: ignore[arg-type]
    op = llm_operator("llm_diff", tools)
    ctx = OperatorContext(
        problem,
        np.random.default_rng(0),
        progs[2:4],
        model="openai/scripted",
        ancestors=progs[4:8],
        insight="- momentum helps\n- clip the update",
    )
    parent = progs[0]
    prompt = {"messages": [{"content": f"# Current program\n```python\n{parent.code}```"}]}
    reply = tweak(Request(prompt, {}, 0)).content
    t0 = time.perf_counter()
    for _ in range(repeats):
        system_prompt(tools, problem)
        prompt = _user_prompt("diff", tools, [parent], ctx)
    t_prompt = (time.perf_counter() - t0) / repeats
    t0 = time.perf_counter()
    for _ in range(repeats):
        child = apply_diff(parent.code, parse_diff(reply or ""))
    t_apply = (time.perf_counter() - t0) / repeats
    t0 = time.perf_counter()
    for _ in range(repeats):
        split_blocks(child)
        check_program(child, problem.allowed_imports)
        code_hash(child)
    t_validate = (time.perf_counter() - t0) / repeats
    # Through litellm to a local zero-latency server: the whole operator, as the controller calls it.
    with OpenAIServer(tweak) as server:
        cfg = load_config(None, [f"llm.models=[{{model: openai/scripted, api_base: '{server.url}'}}]"])
        real = llm_tools(cfg)
        assert real is not None
        op = llm_operator("llm_diff", real)
        op.propose([parent], ctx)  # warm-up (litellm's first call sets up its HTTP client)
        t0 = time.perf_counter()
        for _ in range(50):
            op.propose([parent], ctx)
        t_call = (time.perf_counter() - t0) / 50
    return [
        ("prompt build (system + diff prompt)", t_prompt),
        ("parse + apply diff", t_apply),
        ("validate (blocks, static rules, hash)", t_validate),
        ("whole llm_diff child via litellm, 0 s server", t_call),
        ("prompt size (characters)", len(prompt)),
    ]


def throughput(evals: int) -> list[tuple[str, float, float, float]]:
    base = [
        "problem.name=optimizer_discovery",
        "problem.seed_program=sgd",
        f"budget.max_evaluations={evals}",
        "controller.max_in_flight=2",
        "evaluator.memory_mb=4096",
        "islands.num_islands=2",
        "validation.island_bests=false",
        "validation.top_k=0",
    ]
    rows = []
    latency = {"fast": 0.0, "slow": 2.0}

    def script(r: Request) -> Reply:
        return Reply(tweak(r).content, delay_s=latency["slow" if "slow" in r.body.get("model", "") else "fast"])

    with OpenAIServer(script) as server:

        def llm(name: str) -> list[str]:
            return base + [
                "operators.weights={llm_diff: 1}",
                "llm.insights_interval=0",
                f"llm.models=[{{model: openai/{name}, api_base: '{server.url}'}}]",
            ]

        runs = {
            "genetic only": base + ["operators.weights={ast_mutate: 0.85, ast_crossover: 0.15}"],
            "LLM, 0 s per reply": llm("fast"),
            "LLM, 2 s per reply": llm("slow"),
        }
        for label, overrides in runs.items():
            with tempfile.TemporaryDirectory() as tmp:
                cfg = load_config(None, overrides)
                store = create_run(cfg, Path(tmp) / "run")
                t0 = time.monotonic()
                progress, _ = execute(cfg, store)
                wall = time.monotonic() - t0
                eval_s = [p.eval_seconds for p in store.programs("eval_seconds IS NOT NULL AND operator != 'seed'")]
                busy = sum(eval_s) / (cfg.controller.max_in_flight * wall)  # share of slot time spent evaluating
                rows.append((label, 60 * progress.evaluations / wall, float(np.mean(eval_s)), busy))
                store.close()
    return rows


def main() -> None:
    evals = int(sys.argv[1]) if len(sys.argv) > 1 else 24
    print("| controller cost per LLM child | ms |\n|---|---|")
    for label, value in overhead():
        print(f"| {label} | {value:.0f} |" if "size" in label else f"| {label} | {1000 * value:.2f} |")
    print(
        f"\n| optimizer_discovery, {evals} evaluations, 2 slots | evaluations/min | mean evaluation s "
        "| slots busy |\n|---|---|---|---|"
    )
    for label, per_min, mean_eval, busy in throughput(evals):
        print(f"| {label} | {per_min:.1f} | {mean_eval:.2f} | {100 * busy:.0f}% |")


if __name__ == "__main__":
    main()
