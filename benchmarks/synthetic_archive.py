"""Make a synthetic run archive of N programs, shaped like a long real run, for the read-path benchmarks.

Programs breed from recent evaluated ones (so lineages run thousands of steps deep), a twentieth are
crossovers, a fifth are written by (pretend) LLMs with their calls stored, about a quarter fail and
a fifth are rejected duplicates; island events, migrations, resets, a few validations and insights
complete it. Everything goes through the real schema, so `evolve` and the web view read it as a run.

Usage: .venv/bin/python benchmarks/synthetic_archive.py DIR [N]
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evolve.config import RunConfig  # noqa: E402
from evolve.loader import builtin_problems, load_problem_folder  # noqa: E402
from evolve.program import EventKind, FailureKind, LLMProvenance, Program, RejectionKind, Status  # noqa: E402
from evolve.secrets import Redactor  # noqa: E402
from evolve.store import ARCHIVE, LineageStore, _row_values  # noqa: E402

SEED_CODE = '''"""Random local search."""
import math
import random


# EVOLVE-BLOCK-START
def search(f, dim, budget, rng):
    best = [rng.uniform(-5.12, 5.12) for _ in range(dim)]
    best_value = f(best)
    step = {step}
    for _ in range(budget - 1):
        candidate = [x + rng.gauss(0, step) for x in best]
        value = f(candidate)
        if value < best_value:
            best, best_value = candidate, value
        step *= {decay}
    return best
# EVOLVE-BLOCK-END
'''
MODELS = ("openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5", "local/qwen2.5-coder")
OPERATORS = ("ast_mutate", "ast_mutate", "ast_mutate", "ast_crossover", "llm_diff", "llm_rewrite")


def make(run_dir: Path, n: int, seed: int = 0, islands: int = 3, recent: int = 50) -> LineageStore:
    """``recent``: parents are drawn from the last this-many evaluated programs (smaller: deeper lineages)."""
    rng = random.Random(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = RunConfig()
    cfg.budget.max_evaluations = n
    cfg.islands.num_islands = islands
    cfg.llm.models = []
    store = LineageStore.create(run_dir / ARCHIVE)
    problem = load_problem_folder(builtin_problems()["function_min"], {})
    store.init_run(
        cfg.model_dump_json(), seed, "function_min", "1", {"python": "3.11", "synthetic": "1"}, problem.declaration()
    )
    db = store._db  # bulk load: one transaction, executemany (the named operations commit per row)
    now = time.time() - n * 0.5
    evaluated: list[tuple[int, float, int]] = []  # (id, fitness, generation)
    best = [(-1e9, 0)] * islands
    rows, events, calls = [], [], []
    cols: list[str] = []
    for pid in range(1, n + 1):
        created = now + pid * 0.5
        if pid == 1:
            p = Program(
                code=SEED_CODE.format(step=1.0, decay=0.999),
                operator="seed",
                island=0,
                status=Status.EVALUATED,
                fitness=-1.5,
                code_hash="h1",
                created_at=created,
                operator_info={"seed": "random_local_search"},
            )
        else:
            pool = evaluated[-recent:]
            parent = rng.choice(pool)
            op = rng.choice(OPERATORS) if len(pool) > 1 else "ast_mutate"
            parents = [parent] + ([rng.choice([q for q in pool if q[0] != parent[0]])] if "crossover" in op else [])
            code = SEED_CODE.format(step=round(rng.uniform(0.1, 3), 3), decay=round(rng.uniform(0.99, 1), 5))
            p = Program(
                code=code,
                parent_ids=[q[0] for q in parents],
                operator=op,
                island=pid % islands,
                generation=1 + max(q[2] for q in parents),
                code_hash=f"h{pid}",
                created_at=created,
                operator_info={"edits": ["perturb constant"]},
            )
            roll = rng.random()
            if roll < 0.2:
                p.status, p.rejection = Status.REJECTED, rng.choice(list(RejectionKind))
                p.duplicate_of = parent[0] if p.rejection.value.startswith("duplicate") else None
                p.reason = f"duplicate of program {parent[0]}" if p.duplicate_of else "syntax: invalid syntax"
            elif roll < 0.45:
                p.status, p.failure_kind = Status.FAILED, rng.choice(list(FailureKind))
                p.reason, p.stage_reached = f"stage quick: {p.failure_kind} (synthetic)", "quick"
            else:
                p.status, p.stage_reached = Status.EVALUATED, "full"
                p.fitness = parent[1] + rng.gauss(0.002, 0.05)
            if op.startswith("llm"):
                p.llm = LLMProvenance(
                    model=rng.choice(MODELS),
                    prompt=json.dumps([{"role": "user", "content": "..."}]),
                    response="<<<<<<< SEARCH\n...\n=======\n...\n>>>>>>> REPLACE",
                    tokens_in=800,
                    tokens_out=300,
                    cost=0.0003,
                    latency_s=rng.uniform(0.5, 5),
                )
                calls.append(
                    (
                        pid,
                        op,
                        p.llm.model,
                        0,
                        p.llm.prompt,
                        p.llm.response,
                        800,
                        300,
                        0.0003,
                        p.llm.latency_s,
                        None,
                        created,
                    )
                )
        if p.status != Status.REJECTED:
            p.eval_seconds, p.eval_started_at, p.eval_finished_at = 0.2, created, created + 0.2
            p.descriptors = {"ast_nodes": float(rng.randint(40, 400)), "calls": float(rng.randint(2, 30))}
            p.output = "" if p.fitness is not None else "Traceback (most recent call last):\n  ..."
        if p.fitness is not None:
            p.metrics = {"quick": {"mean_f": -p.fitness}, "full": {"mean_f": -p.fitness}}
            evaluated.append((pid, p.fitness, p.generation))
            if p.fitness > best[p.island][0]:
                best[p.island] = (p.fitness, pid)
                data = {"fitness": p.fitness, "descriptors": p.descriptors, "outcome": "new"}
                events.append((EventKind.ELITE_ADDED.value, p.island, pid, json.dumps(data), created))
            if pid % 997 == 0:
                p.validated_fitness = p.fitness - 0.05
                p.metrics["validate"] = {"fitness": p.validated_fitness}
        if pid % 25 == 0 and evaluated:
            src = rng.randrange(islands)
            f, mover = best[src]
            if mover:
                events.append(
                    (
                        EventKind.MIGRATION.value,
                        (src + 1) % islands,
                        mover,
                        json.dumps(
                            {"fitness": f, "descriptors": {"ast_nodes": 100.0, "calls": 10.0}, "from_island": src}
                        ),
                        created,
                    )
                )
        values = _row_values(p, Redactor())
        values["parent_id"] = p.parent_ids[0] if p.parent_ids else None
        cols = list(values)
        rows.append([values[c] for c in cols])
    with db:
        db.execute("BEGIN")
        db.executemany(f"INSERT INTO programs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", rows)
        db.executemany("INSERT INTO events (kind, island, program_id, data, created_at) VALUES (?, ?, ?, ?, ?)", events)
        db.executemany(
            "INSERT INTO llm_calls (program_id, purpose, model, attempt, prompt, response, tokens_in, "
            "tokens_out, cost, latency_s, error, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            calls,
        )
        for i, (f, pid) in enumerate(best):
            db.execute(
                "INSERT INTO islands VALUES (?, ?, ?, ?, ?)", (i, n // islands, 0, f if pid else None, pid or None)
            )
        db.execute(
            "INSERT INTO insights (created_at, evaluations, model, text) VALUES (?, ?, ?, ?)",
            (time.time(), n, MODELS[0], "Smaller steps late in the search help."),
        )
        db.execute("UPDATE run SET state = 'finished'")
        db.execute("COMMIT")
    return store


if __name__ == "__main__":
    target, count = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    t0 = time.perf_counter()
    make(target, count).close()
    print(f"wrote {count} programs to {target / ARCHIVE} in {time.perf_counter() - t0:.1f} s")
