"""OpenEvolve's own example folders, run unchanged for 20 evaluations each (genetic operators only:
their config.yaml names hosted models, so `llm.models=[]` keeps the run offline).

Usage: .venv/bin/python benchmarks/peers.py EXAMPLES_DIR
  EXAMPLES_DIR: OpenEvolve's `examples/` folder (e.g. from a clone of
  github.com/algorithmicsuperintelligence/openevolve); nothing of it is copied into this project.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tables import ROOT, fmt, markdown, publish  # noqa: E402

EXAMPLES = ("function_minimization", "circle_packing", "signal_processing")
EVOLVE = str(ROOT / ".venv/bin/evolve")


def main(examples: Path, evaluations: int = 20) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in EXAMPLES:
            run_dir = Path(tmp) / name
            t0 = time.perf_counter()
            proc = subprocess.run(
                [
                    EVOLVE,
                    "run",
                    "--problem",
                    str(examples / name),
                    "--run-dir",
                    str(run_dir),
                    "--max-evaluations",
                    str(evaluations),
                    "--set",
                    "llm.models=[]",
                ],
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                why = proc.stderr.strip().splitlines()[-1][:100]
                rows.append([name, f"failed: {why}", "", "", "", f"{wall:.0f} s"])
                continue
            status = json.loads(
                subprocess.run(
                    [EVOLVE, "status", str(run_dir), "--json"], capture_output=True, text=True, check=True
                ).stdout
            )
            seed = json.loads(
                subprocess.run(
                    [EVOLVE, "show", str(run_dir), "1", "--json"], capture_output=True, text=True, check=True
                ).stdout
            )["fitness"]
            notes = [line for line in proc.stderr.splitlines() if "no counterpart" in line]
            rows.append(
                [
                    name,
                    str(status["evaluations"]),
                    fmt(seed, 4),
                    fmt(status["best"]["fitness"], 4),
                    str(status["by_status"].get("failed", 0)),
                    f"{wall:.0f} s",
                ]
            )
            print(name, status["evaluations"], seed, status["best"], notes[:1])
    table = markdown(["example", "evaluations", "seed fitness", "best fitness", "failed", "wall time"], rows)
    command = f"evolve run --problem EXAMPLES/<name> --max-evaluations {evaluations} --set llm.models=[]"
    text = table + (
        f"\n\n`{command}` for each "
        "(`.venv/bin/python benchmarks/peers.py EXAMPLES`). Fitness is OpenEvolve's own: `combined_score`, "
        "or for signal_processing (no combined_score) the mean of its numeric metrics."
    )
    publish("peers", text)
    print(text)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
