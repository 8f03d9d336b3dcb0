"""Whole runs with LLM operators, driven through the CLI against a scripted OpenAI-compatible server.

The server is real HTTP on 127.0.0.1 and litellm talks to it exactly as in production; only the
"model" is scripted: it reads the prompt it is sent and answers like a (sometimes broken) LLM.
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, cli_json, db, run_cli
from openai_server import OpenAIServer, Reply, Request

from evolve.mutation.blocks import block_bodies

pytestmark = pytest.mark.slow  # end to end: real runs through the CLI, sandbox and Ray

SECRET = "sk-scripted-0123456789abcdefSECRET"
FAULTS = ["nomatch", "outside", "prose", "empty", "429", "500", "slow", "badjson"]


def _value(prompt: str) -> float:
    """The number the current (or failed) program's guess() returns, as the model would read it."""
    m = re.search(r"# (?:Current program|The failed program|Parent 1).*?return ([-0-9.e]+)", prompt, re.S)
    return float(m.group(1)) if m else 0.5


class GuessModel:
    """Moves guess() toward 3; 30% of calls fail in the ways real endpoints and models do."""

    def __init__(self) -> None:
        self.n = self.faults = self.broken = 0
        self.kinds: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, req: Request) -> Reply:
        prompt = req.prompt
        is_diff = "SEARCH/REPLACE" in prompt
        repair = "The program below failed" in prompt
        with self.lock:  # 3 calls in 10 fail; the kinds of fault take turns so every one occurs
            self.n += 1
            n = self.n
            kind = "good"
            if "reviewing an evolutionary search" in prompt:
                kind = "insight"
            elif n % 10 in (1, 4, 7):
                kind = FAULTS[self.faults % len(FAULTS)]
                if (kind in ("nomatch", "outside") and not is_diff) or (kind in ("prose", "empty") and repair):
                    # a fault that cannot apply to this prompt keeps its turn for a later one (a diff-only
                    # fault waits for a diff prompt; a repair meets only transport faults, which retries absorb)
                    kind = "500"
                else:
                    self.faults += 1
        rng = random.Random(n)
        if kind == "good" and not repair and rng.random() < 0.25:
            kind = "broken"  # valid format, broken program: goes to repair
        with self.lock:
            self.kinds.append(kind)
            broken = self.broken
            self.broken += kind == "broken"
        x = _value(prompt)
        new = round(x + rng.uniform(0.2, 0.8) * (3.0 - x), 4)
        body = f"def guess():\n    return {new}\n"
        if kind == "insight":
            return Reply("- NOTE-7f3a: moving the return value toward 3 raised fitness every time")
        if kind == "429":
            return Reply(status=429, headers={"Retry-After": "1"})
        if kind == "500":
            return Reply(status=500)
        if kind == "slow":
            return Reply("too late", delay_s=2.0)
        if kind == "badjson":
            return Reply(raw_body="{this is not json")
        if kind == "empty":
            return Reply("")
        if kind == "prose":
            return Reply("I think the program is already good and would not change anything.")
        if kind == "nomatch":
            return Reply(f"Tweak.\n<<<<<<< SEARCH\n    return 123456.0\n=======\n    return {new}\n>>>>>>> REPLACE\n")
        if kind == "outside":
            return Reply("Tweak.\n<<<<<<< SEARCH\n# EVOLVE-BLOCK-END\n=======\nprint('hi')\n>>>>>>> REPLACE\n")
        if kind == "broken":  # right format, broken program (a crash, a syntax error, a name never assigned)
            bad = [f"1 / (0 * {new})", f"({new}", f"{new} + offset"][broken % 3]
            if "SEARCH/REPLACE" in prompt:
                m = re.search(r"# Current program.*?\n(    return [-0-9.e]+)\n", prompt, re.S)
                old = m.group(1) if m else "    return 0.5"
                return Reply(f"Bold idea.\n<<<<<<< SEARCH\n{old}\n=======\n    return {bad}\n>>>>>>> REPLACE\n")
            return Reply(f"Bold idea.\n```python\ndef guess():\n    return {bad}\n```\n")
        if "The program below failed" in prompt:
            return Reply(f"The failure was a bad expression.\n```python\n{body}```\n")
        if "SEARCH/REPLACE" in prompt:
            m = re.search(r"# Current program.*?\n(    return [-0-9.e]+)\n", prompt, re.S)
            old = m.group(1) if m else "    return 0.5"
            return Reply(f"Move toward 3.\n<<<<<<< SEARCH\n{old}\n=======\n    return {new}\n>>>>>>> REPLACE\n")
        return Reply(f"A new version closer to 3.\n```python\n{body}```\n")


def write_config(path: Path, url: str, budget: int, **extra: object) -> Path:
    cfg = {
        "seed": 1,
        "problem": {"path": str(REPO / "tests/data/guess_three")},
        "budget": {"max_evaluations": budget},
        "islands": {"num_islands": 2, "migration_interval": 8},
        "operators": {
            "weights": {"ast_mutate": 0, "ast_crossover": 0, "llm_diff": 3, "llm_rewrite": 1, "llm_crossover": 1}
        },
        "controller": {"max_in_flight": 2, "max_pending_proposals": 3},
        "llm": {
            "models": [
                {
                    "model": "openai/scripted-guess",
                    "api_base": url,
                    "api_key_env": "SCRIPTED_API_KEY",
                    "timeout_s": 1.0,
                    "price_in_per_mtok": 0.5,
                    "price_out_per_mtok": 1.5,
                }
            ],
            "max_retries": 2,
            "backoff_s": 0.05,
            "backoff_max_s": 0.2,
            "insights_interval": 8,
        },
    }
    for key, value in extra.items():
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})  # type: ignore[assignment]
        node[leaf] = value
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_fault_injection_run_completes_and_records_every_failure(tmp_path: Path) -> None:
    model = GuessModel()
    run_dir = tmp_path / "run"
    with OpenAIServer(model) as server:
        config = write_config(tmp_path / "llm.yaml", server.url, budget=40)
        proc = run_cli("run", str(config), "--run-dir", str(run_dir), env={"SCRIPTED_API_KEY": SECRET}, timeout=400)
        requests = list(server.requests)
    assert "models: openai/scripted-guess" in proc.stderr
    status = cli_json("status", str(run_dir))
    assert status["state"] == "finished" and status["evaluations"] == 40
    conn = db(run_dir)
    calls = conn.execute("SELECT * FROM llm_calls").fetchall()
    faults = [k for k in model.kinds if k in FAULTS]
    assert 0.2 < len(faults) / len(model.kinds) < 0.45 and set(faults) == set(FAULTS)
    # Every request the server saw is one stored attempt, failed ones included.
    assert len(calls) == len(requests)
    assert all(r.headers["authorization"] == f"Bearer {SECRET}" for r in requests)
    errors = " | ".join(c["error"] for c in calls if c["error"])
    for fault in ("RateLimitError 429", "InternalServerError 500", "Timeout", "Expecting property name"):
        assert fault in errors, fault
    reasons = " | ".join(r[0] for r in conn.execute("SELECT reason FROM programs WHERE status='rejected'"))
    for reason in ("does not match the program", "outside the EVOLVE-BLOCK", "empty reply", "no SEARCH/REPLACE block"):
        if reason == "no SEARCH/REPLACE block" and reason not in reasons:
            reason = "no fenced code block"  # prose sent to a rewrite instead of a diff
        assert reason in reasons, reason
    # A child reading a name it never assigns is refused before it runs (no evaluation spent), named.
    unbound = conn.execute("SELECT * FROM programs WHERE reason LIKE '%read before any assignment%'").fetchall()
    assert unbound and all(r["status"] == "rejected" and "'offset' (line" in r["reason"] for r in unbound)
    # Each LLM child carries its provenance; rejected ones keep their prompt and reply.
    llm_children = conn.execute("SELECT * FROM programs WHERE operator LIKE 'llm_%'").fetchall()
    assert llm_children and all(p["llm_model"] == "openai/scripted-guess" and p["llm_prompt"] for p in llm_children)
    assert all(p["llm_cost"] is not None for p in llm_children if p["llm_tokens_in"])
    # A broken child went back once for repair; the repaired child's parent is the failed one.
    repairs = conn.execute("SELECT * FROM programs WHERE operator='llm_repair'").fetchall()
    assert repairs
    for r in repairs:
        parent = conn.execute("SELECT * FROM programs WHERE id=?", (json.loads(r["parent_ids"])[0],)).fetchone()
        assert parent["failure_kind"] in ("crash", "syntax", "static_rule") and parent["operator"] != "llm_repair"
    assert len({json.loads(r["parent_ids"])[0] for r in repairs}) == len(repairs)  # once each
    assert any(r["status"] == "evaluated" for r in repairs)
    # Insights were written and later prompts carry them.
    notes = conn.execute("SELECT * FROM insights").fetchall()
    assert notes and "NOTE-7f3a" in notes[0]["text"]
    assert any("NOTE-7f3a" in (p["llm_prompt"] or "") for p in llm_children)
    # Prompts list what was already tried on the parent, with its effect.
    assert any("Already tried on this program" in (p["llm_prompt"] or "") for p in llm_children)
    # LLM children were evaluated, selected and built upon: fitness went up along LLM lineages.
    best = cli_json("top", str(run_dir), "-n", "1")[0]
    seed_fitness = conn.execute("SELECT fitness FROM programs WHERE operator = 'seed'").fetchone()[0]
    assert seed_fitness == -6.25 and best["fitness"] > -0.5  # the seed returns 0.5; LLM children move to 3
    chain = cli_json("lineage", str(run_dir), str(best["id"]))
    assert sum(1 for step in json.dumps(chain).split('"operator": "llm_')[1:]) >= 2
    # The key never reaches the archive, the output or the prompts.
    for f in run_dir.iterdir():
        assert SECRET.encode() not in f.read_bytes(), f
    assert SECRET not in proc.stdout + proc.stderr
    # `evolve status` shows spend per model and the selector's preferences.
    llm = status["llm"]
    spend = llm["spend"]["openai/scripted-guess"]
    assert spend["attempts"] == len(calls) and spend["errors"] >= 3 and spend["cost"] > 0
    assert llm["preferences"] == {"openai/scripted-guess": 1.0} and llm["insights"] == len(notes)
    text = run_cli("status", str(run_dir)).stdout
    assert "llm openai/scripted-guess" in text and "calls" in text
    # `evolve show` gives an LLM child's reply (and with --prompt its prompt) and every attempt.
    child = llm_children[-1]["id"]
    shown = run_cli("show", str(run_dir), str(child), "--prompt").stdout
    assert "LLM reply" in shown and "LLM prompt (system)" in shown and "llm usage" in shown
    detail = cli_json("show", str(run_dir), str(child))
    assert detail["llm_calls"] and all(c["program_id"] == child for c in detail["llm_calls"])


def test_token_budget_ends_the_run_cleanly(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with OpenAIServer(
        lambda r: Reply(
            "Nothing.\n```python\ndef guess():\n    return 1.5\n```\n", prompt_tokens=1000, completion_tokens=100
        )
    ) as server:
        config = write_config(tmp_path / "llm.yaml", server.url, budget=50, **{"budget.max_llm_tokens": 3000})
        proc = run_cli("run", str(config), "--run-dir", str(run_dir), env={"SCRIPTED_API_KEY": SECRET})
        n_requests = len(server.requests)
    assert "LLM token budget spent" in proc.stderr and "llm spend" in proc.stderr
    status = cli_json("status", str(run_dir))
    assert status["state"] == "finished" and status["evaluations"] < 50
    # Calls already in flight when the budget ran out may finish; no new call starts after that.
    assert 3 <= n_requests <= 3 + 3 + 2 and status["llm"]["tokens"] == 1100 * n_requests


def test_llm_setup_errors_are_clear_and_create_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path / "llm.yaml", "http://127.0.0.1:9/v1", budget=5)
    proc = run_cli("run", str(config), "--run-dir", str(tmp_path / "run"), check=False, env={"SCRIPTED_API_KEY": ""})
    assert proc.returncode == 2 and "SCRIPTED_API_KEY is not set" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()
    proc = run_cli(
        "run",
        str(config),
        "--run-dir",
        str(tmp_path / "run"),
        "--set",
        "llm.prompts_dir=/nonexistent",
        check=False,
        env={"SCRIPTED_API_KEY": SECRET},
    )
    assert proc.returncode == 2 and "llm.prompts_dir" in proc.stderr


def test_no_model_means_genetic_only_and_says_so(tmp_path: Path) -> None:
    proc = run_cli(
        "run",
        "--problem",
        str(REPO / "tests/data/guess_three"),
        "--run-dir",
        str(tmp_path / "r"),
        "--max-evaluations",
        "4",
    )
    assert "genetic operators only" in proc.stderr
    ops = {r[0] for r in db(tmp_path / "r").execute("SELECT operator FROM programs")}
    assert ops <= {"seed", "ast_mutate", "ast_crossover"}


MOMENTUM_BODY = """def init_state(param):
    return {"m": torch.zeros_like(param), "v": torch.zeros_like(param)}


def update(param, grad, state, step, total_steps):
    m = 0.9 * state["m"] + grad
    v = state["v"]
    direction = m
    return direction, {"m": m, "v": v}
"""
# The zoo's Adam (problems/optimizer_discovery/seeds/adam.py) is the oracle's last step.
ADAM_BODY = block_bodies((REPO / "problems/optimizer_discovery/seeds/adam.py").read_text())[0]


def oracle(req: Request) -> Reply:
    """Knows the textbook path: SGD -> momentum -> Adam-style normalisation, in diff or rewrite form."""
    m = re.search(r"# Current program.*?```python\n(.*?)```", req.prompt, re.S)
    if m is None:
        return Reply("- momentum then per-coordinate normalisation helped")  # an insights call
    body = block_bodies(m.group(1))[0]
    if "sqrt" in body:  # past Adam: small tweaks of the second-moment decay
        beta2 = re.search(r"(0\.9\d*) \* state\[.v.\]", body)
        new = f"0.99{random.Random(req.received_at).randint(0, 99):02d}"
        target = body.replace(f"{beta2.group(1)} * state", f"{new} * state") if beta2 else body
    elif "direction = m" in body:
        target = ADAM_BODY
    else:
        target = MOMENTUM_BODY
    if "SEARCH/REPLACE" in req.prompt:
        return Reply(f"Next step.\n<<<<<<< SEARCH\n{body.rstrip()}\n=======\n{target.rstrip()}\n>>>>>>> REPLACE\n")
    return Reply(f"Next step.\n```python\n{target}```\n")


def test_oracle_model_carries_fitness_up_through_the_loop(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with OpenAIServer(oracle) as server:
        config = write_config(
            tmp_path / "oracle.yaml",
            server.url,
            budget=4,
            **{
                "problem": {"name": "optimizer_discovery", "seed_program": "sgd", "options": {"seeds": [0]}},
                "islands": {"num_islands": 1, "selection": {"exploit_ratio": 1.0, "num_inspirations": 1}},
                "operators.weights": {"llm_diff": 1, "llm_rewrite": 1},
                "controller": {"max_in_flight": 1, "max_pending_proposals": 1},
                "validation": {"island_bests": False, "top_k": 0},
                "evaluator": {"timeout_s": 300, "memory_mb": 4096},
            },
        )
        run_cli("run", str(config), "--run-dir", str(run_dir), env={"SCRIPTED_API_KEY": SECRET}, timeout=600)
    best = cli_json("top", str(run_dir), "-n", "1")[0]
    conn = db(run_dir)
    chain, node = [], best["id"]
    while node is not None:  # walk the best program's lineage back to the seed
        row = conn.execute("SELECT * FROM programs WHERE id=?", (node,)).fetchone()
        chain.append(row)
        parents = json.loads(row["parent_ids"])
        node = parents[0] if parents else None
    chain.reverse()
    ops = [r["operator"] for r in chain]
    assert ops[0] == "seed" and all(op.startswith("llm_") for op in ops[1:]) and len(ops) >= 3, ops
    fitness = [r["fitness"] for r in chain]
    assert "direction = m" in chain[1]["code"] and "sqrt" in chain[2]["code"]
    assert fitness[0] < fitness[1] < fitness[2], fitness  # SGD < momentum < Adam
    # Harness 4, seed 0: SGD 0.78, Adam 1.01 (tuned AdamW scores 1 by construction); the margin
    # between them is far above the seed-to-seed spread of either (zoo table, benchmarks/RESULTS.md).
    assert best["fitness"] > 0.95 and best["fitness"] - fitness[0] > 0.15, fitness


def test_waiting_for_the_model_does_not_spin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While only LLM replies are pending, the loop blocks instead of polling: a spinning main
    thread burnt a core and starved the LLM threads of the GIL (first calls took ~20 s)."""
    from evolve.config import load_config
    from evolve.runner import create_run, execute, llm_tools

    monkeypatch.setenv("SCRIPTED_API_KEY", SECRET)
    body = "Slow.\n```python\ndef guess():\n    return {}\n```\n"
    counter = iter(range(1000))
    with OpenAIServer(lambda r: Reply(body.format(1.0 + next(counter) / 10), delay_s=1.5)) as server:
        cfg = load_config(
            write_config(
                tmp_path / "llm.yaml",
                server.url,
                budget=3,
                **{
                    "controller": {"max_in_flight": 1, "max_pending_proposals": 1},
                    "llm.insights_interval": 0,
                    "operators.weights": {"llm_rewrite": 1},
                    "llm.models": [
                        {
                            "model": "openai/slow",
                            "api_base": server.url,
                            "api_key_env": "SCRIPTED_API_KEY",
                            "timeout_s": 10,
                        }
                    ],
                },
            )
        )
        tools = llm_tools(cfg)
        store = create_run(cfg, tmp_path / "run")
        start: list[float] = []

        def on_progress(p: object) -> None:  # measure from the loop's first turn (imports done)
            if not start:
                start.extend([time.thread_time(), time.monotonic()])

        progress, _ = execute(cfg, store, on_progress, tools)
        cpu, wall = time.thread_time() - start[0], time.monotonic() - start[1]
    assert progress.evaluations == 3 and wall > 3.0  # 1.5 s replies, at most two at a time
    assert cpu < 0.25 * wall, (cpu, wall)


def test_a_child_that_only_adds_dead_code_is_a_duplicate_and_costs_no_evaluation(tmp_path: Path) -> None:
    """Every other reply keeps the parent's computation and adds an assignment nothing reads: code dedup
    sees through it (the dead statement is dropped before hashing), so it is never trained."""
    calls = {"n": 0}
    lock = threading.Lock()

    def model(req: Request) -> Reply:
        with lock:
            calls["n"] += 1
            n = calls["n"]
        x = _value(req.prompt)
        if n % 2:
            return Reply(f"Same, tidier.\n```python\ndef guess():\n    unused = {x} * 2\n    return {x}\n```\n")
        new = f"{x + 0.5 * (3.0 - x) + n * 1e-7:.7f}"  # a value no earlier program returned
        return Reply(f"Closer to 3.\n```python\ndef guess():\n    return {new}\n```\n")

    run_dir = tmp_path / "run"
    with OpenAIServer(model) as server:
        weights = {"ast_mutate": 0, "ast_crossover": 0, "llm_diff": 0, "llm_rewrite": 1, "llm_crossover": 0}
        config = write_config(tmp_path / "llm.yaml", server.url, budget=8, **{"operators.weights": weights})
        run_cli("run", str(config), "--run-dir", str(run_dir), env={"SCRIPTED_API_KEY": SECRET}, timeout=300)
    conn = db(run_dir)
    dead = conn.execute("SELECT * FROM programs WHERE code LIKE '%unused = %'").fetchall()
    assert dead, "the scripted model wrote dead-code children"
    for row in dead:
        assert row["status"] == "rejected" and row["rejection"] == "duplicate_code", dict(row)
        original = conn.execute("SELECT code FROM programs WHERE id = ?", (row["duplicate_of"],)).fetchone()
        assert "unused" not in original["code"]
    assert cli_json("status", str(run_dir))["evaluations"] == 8


def test_an_unreachable_model_is_named_set_aside_and_counted_by_cause(tmp_path: Path) -> None:
    """Two models on one scripted server: one answers, one's key is refused (401). After three refused calls
    in a row the run says so in one line and goes on with the other; the refusals are counted by cause."""

    answers = iter(range(10**6))

    def script(req: Request) -> Reply:
        if req.body.get("model") == "locked":
            return Reply(status=401)
        return Reply(f"Closer.\n```python\ndef guess():\n    return {2 + next(answers) / 1000}\n```\n")

    locked = {"model": "openai/locked", "api_key_env": "SCRIPTED_API_KEY", "timeout_s": 1.0}
    with OpenAIServer(script) as server:
        good = {"model": "openai/good", "api_base": server.url, "api_key_env": "SCRIPTED_API_KEY", "timeout_s": 1.0}
        config = write_config(
            tmp_path / "llm.yaml",
            server.url,
            budget=16,
            **{
                "llm.models": [good, {**locked, "api_base": server.url}],
                "llm.insights_interval": 0,
                "operators.weights": {"ast_mutate": 0, "ast_crossover": 0, "llm_rewrite": 1},
            },
        )
        proc = run_cli("run", str(config), "--run-dir", str(tmp_path / "run"), env={"SCRIPTED_API_KEY": SECRET})
    lines = [line for line in proc.stderr.splitlines() if line.startswith("llm: openai/locked is unreachable")]
    assert len(lines) == 1 and "3 calls in a row failed (auth" in lines[0], proc.stderr
    assert "the run goes on with openai/good" in lines[0]
    status = cli_json("status", str(tmp_path / "run"))
    assert status["state"] == "finished" and status["evaluations"] == 16
    spend = status["llm"]["spend"]
    assert spend["openai/locked"]["failed_by_cause"] == {"auth": spend["openai/locked"]["errors"]}
    assert 3 <= spend["openai/locked"]["attempts"] <= 3 + 5  # the calls already in flight when it was set aside
    assert spend["openai/good"]["errors"] == 0 and "auth" in run_cli("status", str(tmp_path / "run")).stdout


def test_when_every_model_is_unreachable_an_llm_only_run_stops_with_the_reason(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on: connection refused, at once
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    config = write_config(tmp_path / "llm.yaml", url, budget=30, **{"llm.max_retries": 0})
    proc = run_cli("run", str(config), "--run-dir", str(tmp_path / "run"), env={"SCRIPTED_API_KEY": SECRET})
    assert "llm: openai/scripted-guess is unreachable (3 calls in a row failed (connection" in proc.stderr
    assert "no model is left" in proc.stderr
    status = cli_json("status", str(tmp_path / "run"))
    assert "every LLM model is unreachable" in status["stop_reason"] and status["evaluations"] == 0


def test_a_child_that_fails_its_probe_is_stored_but_spends_no_budget(tmp_path: Path) -> None:
    """function_min through the real sandbox: every other reply writes a search() that crashes at its first
    call (the behaviour probe). Those children are stored as failed at the fingerprint stage, with the
    error; the run still trains as many children as the budget says."""
    calls = {"n": 0}
    lock = threading.Lock()

    def model(req: Request) -> Reply:
        with lock:
            calls["n"] += 1
            n = calls["n"]
        if n % 2:
            body = f"def search(f, dim, budget, rng):\n    return [{n}.0 / (dim - dim)] * dim\n"
        else:
            step = 1.0 + n * 0.01  # a step no earlier child used: another behaviour
            body = (
                "def search(f, dim, budget, rng):\n    x = [rng.uniform(-5.0, 5.0) for _ in range(dim)]\n"
                "    fx = f(x)\n    for i in range(budget - 1):\n"
                f"        cand = [xi + rng.gauss(0.0, {step:.2f}) for xi in x]\n        fc = f(cand)\n"
                "        if fc < fx:\n            x, fx = cand, fc\n    return x\n"
            )
        return Reply(f"Another search.\n```python\n{body}```\n")

    run_dir = tmp_path / "run"
    with OpenAIServer(model) as server:
        weights = {"ast_mutate": 0, "ast_crossover": 0, "llm_diff": 0, "llm_rewrite": 1, "llm_crossover": 0}
        config = write_config(
            tmp_path / "llm.yaml",
            server.url,
            budget=6,
            **{"operators.weights": weights, "problem.path": None, "problem.name": "function_min"},
        )
        run_cli("run", str(config), "--run-dir", str(run_dir), env={"SCRIPTED_API_KEY": SECRET}, timeout=300)
    conn = db(run_dir)
    crashed = conn.execute("SELECT * FROM programs WHERE code LIKE '%dim - dim%'").fetchall()
    assert crashed, "the scripted model wrote crashing children"
    for row in crashed:
        assert (row["status"], row["stage_reached"]) == ("failed", "fingerprint"), dict(row)
        assert "ZeroDivisionError" in row["reason"]
    status = cli_json("status", str(run_dir))
    assert status["state"] == "finished" and status["evaluations"] == 6
    outcomes = status["operator_outcomes"]  # llm_rewrite's, and llm_repair's (a failed child goes back once)
    assert sum(o["failed_before_training"] for o in outcomes.values()) == len(crashed)
    assert "failed before training" in " ".join(run_cli("status", str(run_dir)).stdout.split())
    trained = conn.execute(
        "SELECT COUNT(*) FROM programs WHERE operator != 'seed' AND status IN ('evaluated', 'failed') "
        "AND stage_reached != 'fingerprint'"
    ).fetchone()[0]
    assert trained == 6
