"""What the web view shows, as JSON-able data built from a run's archive (opened read-only).

Each function answers one endpoint of :mod:`evolve.ui.server` (and one entry of a static report).
Series are downsampled so a 100,000-program run answers as fast as a small one; programs are sent as
light summaries (no code) and fetched after an id, so a live page asks only for what is new.
"""

from __future__ import annotations

import bisect
import difflib
import json
import math
from collections import Counter, defaultdict
from typing import Any

from evolve.archive import ArchiveReader

MAX_POINTS = 1500  # per series
GRID_EPSILON = 1e-6  # pyribs' GridArchive default: cells are computed exactly as the islands' archives do


def _downsample(points: list[Any], limit: int = MAX_POINTS) -> list[Any]:
    if len(points) <= limit:
        return points
    step = len(points) / limit
    picked = [points[int(i * step)] for i in range(limit)]
    return picked[:-1] + [points[-1]]


def _config(store: ArchiveReader) -> dict[str, Any]:
    return dict(json.loads(store.run_info()["config_json"]))


def overview(store: ArchiveReader) -> dict[str, Any]:
    """State, budget, champion, counts, islands, and the run's progress over evaluations and time."""
    info = store.run_info()
    cfg = _config(store)
    champion = store.champion()
    # (id, island, status, failure_kind, fitness, finished_at), in completion order
    finished = store.finished_timeline()
    islands = cfg["islands"]["num_islands"]
    best, per_island = -math.inf, [-math.inf] * islands
    best_series: list[list[float | int | None]] = []
    island_series: list[list[list[float | int]]] = [[] for _ in range(islands)]
    for i, (_, island, _, _, fitness, _) in enumerate(finished, 1):
        if fitness is not None:
            if fitness > best:
                best = fitness
                best_series.append([i, fitness])
            if island < islands and fitness > per_island[island]:
                per_island[island] = fitness
                island_series[island].append([i, fitness])
    if best_series and finished:
        best_series.append([len(finished), best])
    times = [f[5] for f in finished if f[5]]
    start = min([info["created_at"], *times[:1]])
    rate: list[list[float]] = []
    if times:
        width = max(60.0, (times[-1] - start) / 60)  # at most ~60 bins, at least a minute each
        bins = Counter(int((t - start) // width) for t in times)
        rate = [[round((b + 0.5) * width, 1), bins.get(b, 0) * 60.0 / width] for b in range(max(bins) + 1)]
    chunk = max(5, math.ceil(len(finished) / 40))  # a share over at least 5 evaluations
    failure_share = []
    for lo in range(0, len(finished), chunk):
        part = finished[lo : lo + chunk]
        kinds = Counter(str(f[3]) for f in part if f[2] == "failed")
        failure_share.append({"evaluations": lo + len(part), **{k: v / len(part) for k, v in kinds.items()}})
    spend = store.llm_spend_timeline()
    tokens, cost = store.llm_totals()
    return {
        "run": {
            "state": str(info["state"]),
            "stop_reason": info["stop_reason"],
            "problem": info["problem_name"],
            "problem_version": info["problem_version"],
            "seed": info["seed"],
            "created_at": start,
            "updated_at": info["updated_at"],
            "versions": info["versions"],
            "declaration": info["problem"],
        },
        "config": cfg,
        "budget": {
            "max_evaluations": cfg["budget"]["max_evaluations"],
            "evaluations": len(finished),
            "max_llm_tokens": cfg["budget"]["max_llm_tokens"],
            "max_llm_cost": cfg["budget"]["max_llm_cost"],
            "llm_tokens": tokens,
            "llm_cost": cost,
        },
        "champion": None if champion is None else champion.champion_summary(),
        "isolation": info["isolation"],
        "counts": store.counts(),
        "islands": [row.__dict__ for row in store.island_rows().values()],
        "series": {
            "best": _downsample(best_series),
            "islands": [_downsample(s) for s in island_series],
            "rate_per_minute": rate,
            "failure_share": failure_share,
            "llm_spend": _downsample([[round(t - start, 2), c, k] for t, c, k in spend]),
        },
        "llm": store.llm_spend(),
        "last_id": store.last_id(),
        "last_event": store.last_event_seq(),
    }


def head(store: ArchiveReader) -> dict[str, Any]:
    """What a live page polls: has anything new landed since it last looked?"""
    return {
        "last_id": store.last_id(),
        "last_event": store.last_event_seq(),
        "state": str(store.run_info()["state"]),
        "evaluations": store.completed_evaluations(),
    }


def programs(store: ArchiveReader, after: int = 0, limit: int = 5000) -> dict[str, Any]:
    rows = store.summaries(after, limit)
    return {"programs": rows, "last_id": rows[-1]["id"] if rows else after, "more": len(rows) == limit}


def lineage(store: ArchiveReader, top: int = 20, all_up_to: int = 3000) -> dict[str, Any]:
    """The lineage graph: every program when the run is small, else the ancestors (both parents of every
    crossover) of the best ``top``; the champion's first-parent path; edges by operator."""
    total = store.last_id()
    champion = store.champion()
    path = [row["id"] for row in store.lineage(champion.id)] if champion and champion.id else []
    if total <= all_up_to:
        nodes = store.summaries(0, None)
        pruned = False
    else:
        wanted = set(store.top_ids(top, by="validated")) | set(path)
        nodes = store.summaries_of(store.ancestors(wanted))
        pruned = True
    ids = {n["id"] for n in nodes}
    edges = [
        {"source": p, "target": n["id"], "operator": n["operator"], "mate": i > 0}
        for n in nodes
        for i, p in enumerate(n["parent_ids"])
        if p in ids
    ]
    return {"nodes": nodes, "edges": edges, "champion_path": path, "pruned": pruned, "total": total, "top": top}


def program(store: ArchiveReader, program_id: int) -> dict[str, Any]:
    p = store.get(program_id)
    parents = store.get_many(p.parent_ids)
    diffs = [
        {
            "parent": q.id,
            "fitness": q.fitness,
            "diff": "".join(
                difflib.unified_diff(
                    q.code.splitlines(keepends=True),
                    p.code.splitlines(keepends=True),
                    fromfile=f"program {q.id}",
                    tofile=f"program {p.id}",
                )
            ),
        }
        for q in parents
    ]
    return {
        "program": p.model_dump(mode="json"),
        "diffs": diffs,
        "llm_calls": store.llm_calls(program_id),
        "children": store.summaries_of(c.id for c in store.children(program_id, limit=200) if c.id),
        "duplicates": store.duplicates_of(program_id),
    }


def cell_of(value: float, low: float, high: float, bins: int) -> int:
    """The grid index along one descriptor, as pyribs' GridArchive computes it (values outside the range
    land in the edge cells)."""
    index = int((bins * (value - low) + GRID_EPSILON) / (high - low))
    return min(max(index, 0), bins - 1)


def events(store: ArchiveReader, after: int = 0) -> dict[str, Any]:
    """The island event log with each event's grid cell, for the MAP-Elites replay."""
    descriptors = store.run_info()["problem"].get("descriptors", [])
    out = []
    for ev in store.events(after):
        values = ev.data.get("descriptors", {})
        cell = (
            [cell_of(float(values.get(d["name"], d["low"])), d["low"], d["high"], d["bins"]) for d in descriptors]
            if descriptors
            else [0]
        )
        out.append(
            {
                "seq": ev.seq,
                "kind": str(ev.kind),
                "island": ev.island,
                "program_id": ev.program_id,
                "fitness": ev.data.get("fitness"),
                "cell": cell,
                "from_island": ev.data.get("from_island"),
                "donor_island": ev.data.get("donor_island"),
                "finished": ev.data.get("evaluations"),
            }
        )
    return {
        "descriptors": descriptors,
        "num_islands": _config(store)["islands"]["num_islands"],
        "events": out,
        "last_event": out[-1]["seq"] if out else after,
    }


def failures(store: ArchiveReader, limit: int = 500) -> dict[str, Any]:
    rows = store.failure_rows(limit)
    by: dict[str, Counter[str]] = defaultdict(Counter)
    for kind, operator, model, n in store.failure_counts():
        by["kind"][kind] += n
        by["operator"][operator] += n
        by["model"][model or "(genetic)"] += n
    return {
        "rows": rows,
        "by_kind": dict(by["kind"]),
        "by_operator": dict(by["operator"]),
        "by_model": dict(by["model"]),
    }


def compare(stores: dict[str, ArchiveReader]) -> dict[str, Any]:
    """Best fitness so far against evaluations, wall time and LLM cost, one series set per run."""
    runs = {}
    for name, store in stores.items():
        info = store.run_info()
        start = info["created_at"]
        finished = store.finished_timeline()
        spend = store.llm_spend_timeline()
        spend_times = [t for t, _, _ in spend]
        best = -math.inf
        by_evals, by_time, by_cost = [], [], []
        for i, (_, _, _, _, fitness, t) in enumerate(finished, 1):
            if fitness is not None and fitness > best:
                best = fitness
                by_evals.append([i, best])
                if t:
                    by_time.append([round(t - start, 2), best])
                    k = bisect.bisect_right(spend_times, t)
                    by_cost.append([spend[k - 1][1] if k else 0.0, best])
        runs[name] = {
            "problem": info["problem_name"],
            "state": str(info["state"]),
            "evaluations": len(finished),
            "by_evaluations": _downsample(by_evals),
            "by_time": _downsample(by_time),
            "by_cost": _downsample(by_cost),
            "total_cost": spend[-1][1] if spend else 0.0,
        }
    return {"runs": runs}
