"""Engine cost per evaluation: store + selection + mutation + dedup, with a no-op evaluator.

The evaluator returns at once with a pseudo-fitness derived from the code hash, so all the time
measured is the controller's own. Usage: .venv/bin/python benchmarks/engine_overhead.py [N]
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evaluators.cascade import EvalResult  # noqa: E402
from evolve.config import load_config  # noqa: E402
from evolve.controller import Controller  # noqa: E402
from evolve.runner import create_run, problem_ref  # noqa: E402


class NoOpBackend:
    """Completes every submission immediately (benchmark only: measures the engine, not evaluation)."""

    def __init__(self) -> None:
        self.done: list[EvalResult] = []

    def submit(self, program_id: int, code: str) -> None:
        h = int(hashlib.sha256(code.encode()).hexdigest()[:8], 16)
        self.done.append(EvalResult(program_id, ok=True, fitness=h / 2**32, stage_reached="full",
                                    descriptors={"ast_nodes": 20 + h % 400, "calls": h % 40}))

    def wait(self, timeout: float) -> list[EvalResult]:
        out, self.done = self.done, []
        return out

    def in_flight(self) -> int:
        return len(self.done)

    def close(self) -> None:
        pass


def main(n: int) -> None:
    rows = []
    for in_flight in (1, 4):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = load_config(None, [f"budget.max_evaluations={n}", f"controller.max_in_flight={in_flight}"])
            store = create_run(cfg, Path(tmp) / "run")
            problem = problem_ref(cfg).load()
            ctl = Controller(cfg, store, problem, NoOpBackend())
            t0 = time.perf_counter()
            progress = ctl.run()
            dt = time.perf_counter() - t0
            total = store._db.execute("SELECT COUNT(*) FROM programs").fetchone()[0]
            size = (Path(tmp) / "run" / "archive.sqlite").stat().st_size + \
                (Path(tmp) / "run" / "archive.sqlite-wal").stat().st_size
            rows.append((in_flight, progress.evaluations, total, dt, 1000 * dt / progress.evaluations, size / 1e6))
    print(f"{'in_flight':>9} {'evaluations':>11} {'programs':>9} {'seconds':>8} {'ms/eval':>8} {'archive MB':>10}")
    for r in rows:
        print(f"{r[0]:>9} {r[1]:>11} {r[2]:>9} {r[3]:>8.2f} {r[4]:>8.2f} {r[5]:>10.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
