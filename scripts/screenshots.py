"""Screenshots of the web view for the docs, from a real run: overview, lineage and MAP-Elites pages.

Usage: .venv/bin/python scripts/screenshots.py RUN_DIR [OUT_DIR]   (RUN_DIR: e.g. a quickstart run;
OUT_DIR: docs/img). Needs Debian's chromium and playwright (scripts/setup.sh installs both).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent


def main(run_dir: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/evolve"), "ui", str(run_dir), "--port", "0"], stderr=subprocess.PIPE, text=True
    )
    try:
        assert server.stderr is not None
        url = re.search(r"(http://\S+)", server.stderr.readline()).group(1)  # type: ignore[union-attr]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or "chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for name in ("overview", "lineage", "map"):
                page.goto(f"{url}#/{name}")
                page.wait_for_selector("#page[data-ready]", timeout=30_000)
                page.wait_for_timeout(500)
                page.screenshot(path=str(out / f"ui-{name}.png"))
                print(f"wrote {out / f'ui-{name}.png'}")
            browser.close()
    finally:
        server.terminate()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs" / "img")
