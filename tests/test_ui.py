"""`evolve ui` and `evolve report` in a real browser (Debian's Chromium, driven by Playwright).

A real run is made here (function_min, genetic operators plus one LLM child from the scripted local
server, which writes a program whose code, output and reply are full of HTML/JS injection attempts),
then every page is loaded and checked against the archive."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import REPO, cli_json, evolve_cmd, run_cli
from openai_server import OpenAIServer, Reply, Request

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None  # type: ignore[assignment]

# CI installs both (scripts/setup.sh), so there a missing browser fails the tests instead of skipping them.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        (CHROMIUM is None or sync_playwright is None) and not os.environ.get("CI"),
        reason="needs chromium (scripts/setup.sh installs it as root) and playwright",
    ),
]

PAYLOAD = '<script>window.__xss = 1</script>"><img src=x onerror="window.__xss = 2">'
XSS_PROGRAM = f"""def search(f, dim, budget, rng):
    # {PAYLOAD}
    print({PAYLOAD!r})
    return [0.0] * dim
"""
SECRET = "sk-ui-test-0123456789SECRET"


def _hostile_model(req: Request) -> Reply:
    return Reply(f"I changed it. {PAYLOAD}\n```python\n{XSS_PROGRAM}```\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ui")
    with OpenAIServer(_hostile_model) as server:
        config = root / "ui.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "seed": 2,
                    "problem": {"name": "function_min"},
                    "budget": {"max_evaluations": 36},
                    "islands": {"num_islands": 2, "migration_interval": 8, "stagnation_evaluations": 12},
                    "operators": {"weights": {"ast_mutate": 6, "ast_crossover": 1, "llm_rewrite": 2}},
                    "llm": {
                        "models": [
                            {
                                "model": "openai/hostile",
                                "api_base": server.url,
                                "api_key_env": "UI_TEST_KEY",
                                "price_in_per_mtok": 1.0,
                                "price_out_per_mtok": 2.0,
                            }
                        ],
                        "insights_interval": 0,
                        "repair": False,
                    },
                }
            )
        )
        run_cli("run", str(config), "--run-dir", str(root / "run"), env={"UI_TEST_KEY": SECRET}, timeout=300)
    return root / "run"


class UI:
    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            evolve_cmd("ui", *args),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        match = re.search(r"(http://\S+)", line)
        assert match, line
        self.url = match.group(1)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def ui(run_dir: Path) -> Iterator[UI]:
    server = UI([str(run_dir), "--port", str(_free_port())])
    yield server
    server.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_playwright() as p:  # type: ignore[misc]
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Watched:
    """A page whose console errors, dialogs and requests are recorded."""

    def __init__(self, browser: object) -> None:
        self.page: Page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def open(self, url: str) -> Page:
        self.page.goto(url)
        self.page.wait_for_selector("#page[data-ready]", timeout=30_000)
        return self.page

    def assert_clean(self, origin: str) -> None:
        assert not self.errors, self.errors
        assert not self.dialogs, self.dialogs
        assert all(u.startswith((origin, "data:")) for u in self.requests), [
            u for u in self.requests if not u.startswith(origin)
        ]
        assert self.page.evaluate("window.__xss") is None


def _db_programs(run_dir: Path) -> list[dict[str, object]]:
    import sqlite3

    conn = sqlite3.connect(run_dir / "archive.sqlite")
    conn.row_factory = sqlite3.Row
    return [dict(r) for r in conn.execute("SELECT id, fitness, status, code, parent_ids FROM programs ORDER BY id")]


def test_every_page_loads_cleanly_and_stays_local(ui: UI, browser: object, run_dir: Path) -> None:
    w = Watched(browser)
    origin = ui.url.rstrip("/")
    programs = _db_programs(run_dir)
    child = next(p for p in programs if p["parent_ids"] != "[]")
    for page in ("overview", "lineage", "map", "failures", f"program/{child['id']}"):
        w.open(f"{ui.url}#/{page}")
        assert w.page.locator(".error").count() == 0, page
    w.assert_clean(origin)


def test_lineage_shows_one_node_per_program(ui: UI, browser: object, run_dir: Path) -> None:
    programs = _db_programs(run_dir)
    w = Watched(browser)
    page = w.open(f"{ui.url}#/lineage")
    scored = [p for p in programs if p["fitness"] is not None]
    assert int(page.locator(".chart").first.get_attribute("data-nodes") or -1) == len(scored)
    page = w.open(f"{ui.url}#/lineage?top=20&failed=1")
    assert int(page.locator(".chart").first.get_attribute("data-nodes") or -1) == len(programs)


def test_heatmaps_match_the_islands_at_each_point_of_the_event_log(ui: UI, browser: object, run_dir: Path) -> None:
    from evolve.archive import ArchiveReader
    from evolve.config import RunConfig
    from evolve.loader import builtin_problems, load_problem_folder
    from islands.archipelago import Archipelago

    store = ArchiveReader.open(run_dir / "archive.sqlite")
    cfg = RunConfig.model_validate_json(store.run_info()["config_json"])
    events = store.events()
    problem = load_problem_folder(builtin_problems()["function_min"], {})
    w = Watched(browser)
    page = w.open(f"{ui.url}#/map")
    for k in sorted({1, len(events) // 3, len(events) // 2, len(events)}):
        page.evaluate(
            f"(() => {{ const s = document.getElementById('replay'); s.value = {k}; "
            "s.dispatchEvent(new Event('input')); })()"
        )
        arch = Archipelago(cfg.islands, problem.descriptors)
        arch.replay(events[:k], {})
        shown = [int(b.get_attribute("data-filled") or -1) for b in page.locator(".island .chart").all()]
        assert shown == [len(i) for i in arch.islands], (k, shown)


def test_cells_are_the_ones_pyribs_computes() -> None:
    import numpy as np
    from ribs.archives import GridArchive

    from evolve.ui.data import cell_of

    rng = random.Random(0)
    for _ in range(20):
        low, high, bins = rng.uniform(-5, 0), rng.uniform(0.5, 5), rng.randint(1, 12)
        archive = GridArchive(solution_dim=1, dims=[bins], ranges=[(low, high)], dtype=np.float64)
        values = [rng.uniform(low - 1, high + 1) for _ in range(50)] + [low, high, low + (high - low) / bins]
        expected = archive.index_of(np.array([[v] for v in values]))
        assert [cell_of(v, low, high, bins) for v in values] == [int(i) for i in expected]


def test_program_page_shows_the_diff_to_its_parent(ui: UI, browser: object, run_dir: Path) -> None:
    child = next(p for p in _db_programs(run_dir) if p["parent_ids"] != "[]" and p["status"] == "evaluated")
    parent = json.loads(str(child["parent_ids"]))[0]
    w = Watched(browser)
    page = w.open(f"{ui.url}#/program/{child['id']}")
    diff = page.locator("pre.diff").first.inner_text()
    assert f"--- program {parent}" in diff and f"+++ program {child['id']}" in diff
    assert page.locator("pre.diff span.add").count() >= 1
    assert "def search" in page.locator("pre.code").inner_text()


def test_injected_html_and_scripts_stay_text(ui: UI, browser: object, run_dir: Path) -> None:
    hostile = [p for p in _db_programs(run_dir) if "__xss" in str(p["code"])]
    assert hostile, "the scripted model wrote at least one child"
    w = Watched(browser)
    for p in hostile[:2]:
        page = w.open(f"{ui.url}#/program/{p['id']}")
        text = page.inner_text("#page")
        assert "<script>window.__xss = 1</script>" in text  # shown, as text
        assert page.locator("#page img").count() == 0 and page.locator("#page script").count() == 0
    for name in ("failures", "lineage", "overview"):
        w.open(f"{ui.url}#/{name}")
    w.page.wait_for_timeout(500)
    w.assert_clean(ui.url.rstrip("/"))


def test_the_live_page_picks_up_a_new_evaluation(run_dir: Path, browser: object, tmp_path: Path) -> None:
    live = tmp_path / "live"
    shutil.copytree(run_dir, live)
    before = cli_json("status", str(live))["evaluations"]
    server = UI([str(live), "--port", str(_free_port())])
    try:
        w = Watched(browser)
        page = w.open(f"{server.url}#/overview")
        assert page.inner_text("#evaluations").startswith(f"{before} /")
        resume = subprocess.Popen(
            evolve_cmd("resume", str(live), "--max-evaluations", str(before + 3)),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "UI_TEST_KEY": SECRET},
        )
        assert resume.wait(timeout=120) == 0
        expect(page.locator("#evaluations")).to_have_text(re.compile(rf"^{before + 3} /"), timeout=30_000)
        w.assert_clean(server.url.rstrip("/"))
    finally:
        server.close()


def test_the_report_opens_from_disk_and_shows_the_same_champion(run_dir: Path, browser: object, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    run_cli("report", str(run_dir), "-o", str(out))
    champion = cli_json("status", str(run_dir))["champion"]["id"]
    w = Watched(browser)
    page = w.open(out.as_uri() + "#/overview")
    assert page.locator(".card a").first.inner_text() == f"#{champion}"
    page = w.open(out.as_uri() + f"#/program/{champion}")
    assert "def search" in page.locator("pre.code").inner_text()
    assert any("__xss" in str(p["code"]) for p in _db_programs(run_dir))
    assert "<script>window.__xss" not in out.read_text()  # the payload is escaped inside the data block
    assert all(u.startswith(("file://", "data:")) for u in w.requests), w.requests
    assert not w.errors and w.page.evaluate("window.__xss") is None


def test_a_non_loopback_view_needs_its_token(run_dir: Path) -> None:
    port = _free_port()
    server = UI([str(run_dir), "--host", "0.0.0.0", "--port", str(port)])
    try:
        token = re.search(r"token=([\w-]+)", server.url).group(1)  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(f"{base}/api/runs", timeout=5)
        assert denied.value.code == 403
        with urllib.request.urlopen(f"{base}/?token={token}", timeout=5) as r:
            cookie = r.headers["Set-Cookie"].split(";")[0]
            assert "HttpOnly" in r.headers["Set-Cookie"]
        req = urllib.request.Request(f"{base}/api/runs", headers={"Cookie": cookie})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert json.load(r)[0]["name"] == "run"
    finally:
        server.close()


def test_a_loopback_view_can_require_its_token_too(run_dir: Path) -> None:
    port = _free_port()
    server = UI([str(run_dir), "--port", str(port), "--token"])
    try:
        assert "token=" in server.url
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs", timeout=5)
        assert denied.value.code == 403
        with urllib.request.urlopen(server.url, timeout=5) as r:
            assert r.status == 200
    finally:
        server.close()


def test_a_loopback_view_refuses_foreign_host_headers(ui: UI) -> None:
    req = urllib.request.Request(ui.url + "api/runs", headers={"Host": "attacker.example:80"})
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(req, timeout=5)
    assert denied.value.code == 403


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
