"""The read path on large archives: the CLI (`evolve top/status/lineage`, `--help`), the web view's JSON
endpoints and its first paint in a real browser (Debian's Chromium through Playwright), on synthetic
archives shaped like long runs (benchmarks/synthetic_archive.py).

Goals (issues 7 and 11): CLI queries under 1 s at 100k programs; the web view's first paint within 2 s
and each JSON endpoint within 200 ms at 10k programs, overview and top-k within 1 s at 100k.

Usage: .venv/bin/python benchmarks/read_path.py DIR [SIZES...]   (default sizes: 10000 100000)
DIR keeps the archives between runs (made once per size).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synthetic_archive import make  # noqa: E402
from tables import ROOT, markdown, publish  # noqa: E402

from evolve.archive import ARCHIVE  # noqa: E402
from evolve.ui.server import UIServer  # noqa: E402

EVOLVE = str(ROOT / ".venv/bin/evolve")
REPEATS = 3


def best_of(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def cli_times(run_dir: Path) -> dict[str, float]:
    def cli(*args: str) -> None:
        subprocess.run([EVOLVE, *args], check=True, capture_output=True)

    best = subprocess.run(
        [EVOLVE, "top", str(run_dir), "-n", "1", "--json"], check=True, capture_output=True, text=True
    ).stdout
    best_id = best.split('"id":')[1].split(",")[0].strip()
    return {
        "evolve --help": best_of(lambda: cli("--help")),
        "evolve top -n 10": best_of(lambda: cli("top", str(run_dir), "-n", "10")),
        "evolve status": best_of(lambda: cli("status", str(run_dir))),
        "evolve lineage (best)": best_of(lambda: cli("lineage", str(run_dir), best_id)),
    }


ENDPOINTS = ["overview", "head", "programs?limit=5000", "lineage?top=20", "events", "failures"]


def ui_times(run_dir: Path) -> dict[str, float]:
    server = UIServer([run_dir])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    base = server.url.rstrip("/")
    try:
        out: dict[str, float] = {}
        for ep in ENDPOINTS:
            out[f"GET /api/0/{ep}"] = best_of(lambda ep=ep: urllib.request.urlopen(f"{base}/api/0/{ep}").read())
        out.update(first_paint(base + "/"))
        return out
    finally:
        server.shutdown()
        server.server_close()


def first_paint(url: str) -> dict[str, float]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {}
    if chromium is None:
        return {}
    out: dict[str, float] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for page_name in ("overview", "lineage", "map"):

            def paint(page_name: str = page_name) -> None:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"{url}#/{page_name}")
                page.wait_for_selector("#page[data-ready]", timeout=60_000)
                page.close()

            out[f"first paint #/{page_name}"] = best_of(paint)
        browser.close()
    return out


def main() -> None:
    root = Path(sys.argv[1])
    sizes = [int(s) for s in sys.argv[2:]] or [10_000, 100_000]
    results: dict[int, dict[str, float]] = {}
    for n in sizes:
        run_dir = root / f"synthetic-{n}"
        if not (run_dir / ARCHIVE).exists():
            make(run_dir, n).close()
        results[n] = {**cli_times(run_dir), **ui_times(run_dir)}
        print(n, results[n], flush=True)
    rows = list(results[sizes[0]])
    table = markdown(
        ["operation", *[f"{n:,} programs" for n in sizes]],
        [[r, *[f"{results[n].get(r, float('nan')) * 1000:.0f} ms" for n in sizes]] for r in rows],
    )
    text = (
        table + f"\n\nBest of {REPEATS}; CLI figures include the interpreter's start; a first paint is a fresh "
        "page until the view has drawn (`#page[data-ready]`). `.venv/bin/python benchmarks/read_path.py DIR`"
    )
    publish("read-path", text, ("benchmarks/RESULTS.md",))
    print(text)


if __name__ == "__main__":
    main()
