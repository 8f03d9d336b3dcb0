"""`evolve report`: the web view of a run as one self-contained HTML file.

The file inlines the app's scripts and styles and the answers of every endpoint the pages ask for
(overview, lineage, MAP-Elites events, failures, and the program pages of the champion's ancestry
and the best programs), so it opens from disk with no server and no network. The data sits in a
``<script type="application/json">`` block with ``<`` escaped, and a Content-Security-Policy with a
per-file nonce lets only the inlined scripts run.
"""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path
from typing import Any

from evolve.archive import ARCHIVE, ArchiveReader
from evolve.jsonsafe import dumps
from evolve.ui import data
from evolve.ui.server import STATIC

LINEAGE_TOP = 20  # what the lineage page asks for by default


def collect(store: ArchiveReader, name: str, programs: int = 50) -> dict[str, Any]:
    """Every payload the report's pages will ask for, keyed by API path."""
    info = store.run_info()
    out: dict[str, Any] = {
        "0/overview": data.overview(store),
        f"0/lineage?top={LINEAGE_TOP}": data.lineage(store, LINEAGE_TOP),
        "0/events": data.events(store),
        "0/failures": data.failures(store),
        "compare": data.compare({name: store}),
    }
    champion = store.champion()
    wanted = set(store.top_ids(programs, by="validated"))
    if champion is not None and champion.id is not None:
        wanted |= {row["id"] for row in store.lineage(champion.id)}
    for pid in sorted(wanted):
        out[f"0/program/{pid}"] = data.program(store, pid)
    out["runs"] = [{"index": 0, "name": name, "problem": info["problem_name"], "state": str(info["state"])}]
    return out


def _script_json(payload: Any) -> str:
    """JSON that cannot close the <script> element it sits in."""
    text = dumps(payload)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def build(run_dir: Path, programs: int = 50) -> str:
    store = ArchiveReader.open(run_dir / ARCHIVE)
    try:
        payload = collect(store, run_dir.name, programs)
    finally:
        store.close()
    nonce = secrets.token_urlsafe(16)
    report = {"runs": payload.pop("runs"), "data": payload, "written": time.strftime("%Y-%m-%d %H:%M")}
    html = (STATIC / "index.html").read_text()

    def inline_script(match: re.Match[str]) -> str:
        code = (STATIC / match.group(1)).read_text().replace("</script", "<\\/script")
        return f'<script nonce="{nonce}">{code}</script>'

    def inline_style(match: re.Match[str]) -> str:
        return f"<style>{(STATIC / match.group(1)).read_text()}</style>"

    html = re.sub(r'<link rel="stylesheet" href="/static/([\w/.-]+)">', inline_style, html)
    html = re.sub(r'<script src="/static/app.js" defer></script>', "", html)
    html = re.sub(r'<script src="/static/([\w/.-]+)"></script>', inline_script, html)
    csp = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )
    head = f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
    app_js = (STATIC / "app.js").read_text().replace("</script", "<\\/script")
    boot = (
        f'<script type="application/json" id="evolve-report">{_script_json(report)}</script>\n'
        f'<script nonce="{nonce}">window.EVOLVE_REPORT = JSON.parse('
        f'document.getElementById("evolve-report").textContent);</script>\n'
        f'<script nonce="{nonce}">{app_js}</script>'
    )
    html = html.replace('<meta charset="utf-8">', '<meta charset="utf-8">\n' + head, 1)
    before, tag, after = html.rpartition("</body>")  # the last one: inlined libraries may contain the text
    return before + boot + "\n" + tag + after
