"""The web view's JSON endpoints without a browser: what they send must be strict JSON whatever an
archive holds (archives written before the store wrote strict JSON may carry Infinity)."""

from __future__ import annotations

import json
import sqlite3
import threading
import urllib.request
from pathlib import Path

from evolve.program import Program, Status
from evolve.store import LineageStore
from evolve.ui.server import UIServer


def _strict(text: str) -> object:
    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_endpoints_send_strict_json_from_an_archive_holding_infinity(tmp_path: Path) -> None:
    store = LineageStore.create(tmp_path / "archive.sqlite")
    store.init_run("{}", 0, "toy", "1", {"python": "3"})
    sid = store.add_seed(
        Program(
            code="x = 0",
            operator="seed",
            island=0,
            code_hash="s",
            status=Status.EVALUATED,
            fitness=1.0,
            descriptors={"d": 0.5},
        )
    )
    store.close()
    with sqlite3.connect(tmp_path / "archive.sqlite") as raw:  # as an older evolve wrote a diverged run
        raw.execute(
            "UPDATE programs SET descriptors = ?, metrics = ? WHERE id = ?",
            ('{"d": Infinity}', '{"select": {"val_loss": Infinity}}', sid),
        )
    server = UIServer([tmp_path])
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        base = server.url.rstrip("/")
        page = _strict(urllib.request.urlopen(f"{base}/api/0/programs").read().decode())
        assert page["programs"][0]["descriptors"] == {"d": None}  # type: ignore[index]
        program = _strict(urllib.request.urlopen(f"{base}/api/0/program/{sid}").read().decode())
        assert program["program"]["metrics"]["select"]["val_loss"] is None  # type: ignore[index]
    finally:
        server.shutdown()
        server.server_close()


def test_a_non_ascii_token_gets_a_refusal_not_a_dropped_connection(tmp_path: Path) -> None:
    import urllib.error

    store = LineageStore.create(tmp_path / "archive.sqlite")
    store.init_run("{}", 0, "toy", "1", {"python": "3"})
    store.close()
    server = UIServer([tmp_path], token=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        base = server.url.split("?")[0].rstrip("/")
        for header in ({"Cookie": "evolve_token=\u00e9t\u00e9"}, {}):
            request = urllib.request.Request(f"{base}/api/0/head", headers=header)
            try:
                urllib.request.urlopen(request)
                raise AssertionError("no refusal")
            except urllib.error.HTTPError as exc:
                assert exc.code == 403
        good = urllib.request.urlopen(f"{base}/api/0/head?token={server.token}")
        assert good.status == 200
    finally:
        server.shutdown()
        server.server_close()
