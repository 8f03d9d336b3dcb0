"""Engine cost per evaluation (P8): store + selection + mutation + validation + dedup (code and
behaviour) + islands, with the instant fake evaluator of the tests (tests/fakes.py), so all the time
measured is the engine's own. function_min, 3 islands, fingerprints on.

Usage: .venv/bin/python benchmarks/engine_overhead.py [N] [--profile]
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fakes import InstantBackend  # noqa: E402

from evolve.config import load_config  # noqa: E402
from evolve.controller import Controller  # noqa: E402
from evolve.runner import create_run, problem_ref  # noqa: E402


def measure(n: int, in_flight: int, profile: bool = False) -> tuple[int, int, int, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(None, [f"budget.max_evaluations={n}", f"controller.max_in_flight={in_flight}"])
        store = create_run(cfg, Path(tmp) / "run")
        ctl = Controller(cfg, store, problem_ref(cfg).load(), InstantBackend())
        prof = cProfile.Profile() if profile else None
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        progress = ctl.run()
        dt = time.perf_counter() - t0
        if prof:
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        counts = store.counts()["by_status"]
        size = sum(f.stat().st_size for f in (Path(tmp) / "run").iterdir())
        return progress.evaluations, sum(counts.values()), counts.get("rejected", 0), dt, size / 1e6


def main(n: int, profile: bool) -> None:
    print(
        f"{'in_flight':>9} {'evaluations':>11} {'programs':>9} {'rejected':>8} {'seconds':>8} {'ms/eval':>8} "
        f"{'archive MB':>10}"
    )
    for in_flight in (1, 4):
        evals, total, rejected, dt, mb = measure(n, in_flight, profile and in_flight == 1)
        print(f"{in_flight:>9} {evals:>11} {total:>9} {rejected:>8} {dt:>8.2f} {1000 * dt / evals:>8.2f} {mb:>10.2f}")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--profile"]
    main(int(args[0]) if args else 2000, "--profile" in sys.argv)
