"""`evolve ui`: a live web view of one or more runs, served from their archives opened read-only.

The standard library's threading HTTP server is enough: a handful of JSON endpoints and static files
for one user, no templating, no debug mode, nothing to install. It binds 127.0.0.1 by default; on
any other address every request must carry the access token printed at start (as ``?token=`` once,
then a cookie). A Host-header check stops DNS-rebinding pages from reading a loopback server, and a
Content-Security-Policy allows only the app's own scripts, so text from the archive (programs,
outputs, LLM replies: all untrusted) can never run even if some page forgot to escape it.
"""

from __future__ import annotations

import hmac
import ipaddress
import mimetypes
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from evolve.archive import ARCHIVE, ArchiveReader, StoreError
from evolve.jsonsafe import dumps
from evolve.ui import data

STATIC = Path(__file__).resolve().parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class Run:
    """One archive behind the view: a read-only store used by one request at a time."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        self.store = ArchiveReader.open(run_dir / ARCHIVE)
        self.lock = threading.Lock()

    def ask(self, fn: Callable[[ArchiveReader], Any]) -> Any:
        with self.lock:
            return fn(self.store)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class UIServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, runs: list[Path], host: str = "127.0.0.1", port: int = 0, token: bool = False) -> None:
        self.runs = [Run(d) for d in runs]
        self.token = secrets.token_urlsafe(24) if token or not is_loopback(host) else None
        super().__init__((host, port), Handler)
        self.host = host

    @property
    def url(self) -> str:
        base = f"http://{self.host}:{self.server_address[1]}/"
        return base + (f"?token={self.token}" if self.token else "")

    def allowed_hosts(self) -> set[str]:
        port = self.server_address[1]
        hosts = {self.host, *(("localhost", "127.0.0.1", "[::1]") if is_loopback(self.host) else ())}
        return {f"{h}:{port}" for h in hosts}


def _int(query: dict[str, list[str]], key: str, default: int) -> int:
    try:
        return int(query.get(key, [default])[0])
    except ValueError:
        return default


class Handler(BaseHTTPRequestHandler):
    server: UIServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: a request log is noise here
        pass

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(k, v)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, payload: Any, status: int = 200) -> None:
        self._send(status, dumps(payload).encode(), "application/json")

    def _authorised(self, query: dict[str, list[str]]) -> tuple[bool, dict[str, str]]:
        """Loopback servers need no token but refuse foreign Host headers (a DNS-rebinding page); others
        want the token as ?token= (then kept in a cookie) or the cookie."""
        token = self.server.token
        if is_loopback(self.server.host) and self.headers.get("Host") not in self.server.allowed_hosts():
            return False, {}
        if token is None:
            return True, {}
        given = query.get("token", [""])[0]
        if given and _same(given, token):
            return True, {"Set-Cookie": f"evolve_token={token}; HttpOnly; SameSite=Strict; Path=/"}
        cookies = dict(c.strip().split("=", 1) for c in self.headers.get("Cookie", "").split(";") if "=" in c)
        return _same(cookies.get("evolve_token", ""), token), {}

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        ok, cookie = self._authorised(query)
        if not ok:
            return self._send(
                403,
                b"forbidden: this view needs its access token (see `evolve ui` output)",
                "text/plain; charset=utf-8",
            )
        parts = [p for p in url.path.split("/") if p]
        try:
            if not parts:
                return self._send(200, (STATIC / "index.html").read_bytes(), "text/html; charset=utf-8", cookie)
            if parts[0] == "static":
                return self._static(parts[1:])
            if parts[0] == "api":
                return self._api(parts[1:], query)
        except (StoreError, KeyError, IndexError, ValueError) as exc:
            return self._json({"error": str(exc)}, 404)
        self._send(404, b"not found", "text/plain; charset=utf-8")

    def _static(self, parts: list[str]) -> None:
        path = (STATIC / "/".join(parts)).resolve()
        if STATIC not in path.parents or not path.is_file():
            return self._send(404, b"not found", "text/plain; charset=utf-8")
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        charset = "; charset=utf-8" if kind.startswith(("text/", "application/j")) else ""
        self._send(200, path.read_bytes(), kind + charset)

    def _api(self, parts: list[str], query: dict[str, list[str]]) -> None:
        runs = self.server.runs
        if parts == ["runs"]:

            def describe(s: ArchiveReader) -> dict[str, str]:
                info = s.run_info()
                return {"problem": info["problem_name"], "state": str(info["state"])}

            return self._json([{"index": i, "name": r.dir.name, **r.ask(describe)} for i, r in enumerate(runs)])
        if parts == ["compare"]:
            stores = {f"{i}: {r.dir.name}": r for i, r in enumerate(runs)}
            with _all_locked(runs):
                return self._json(data.compare({k: r.store for k, r in stores.items()}))
        run, view, rest = runs[int(parts[0])], parts[1], parts[2:]
        handlers: dict[str, Callable[[ArchiveReader], Any]] = {
            "overview": data.overview,
            "head": data.head,
            "programs": lambda s: data.programs(s, _int(query, "after", 0), min(_int(query, "limit", 5000), 20000)),
            "lineage": lambda s: data.lineage(s, max(1, min(_int(query, "top", 20), 500))),
            "events": lambda s: data.events(s, _int(query, "after", 0)),
            "failures": lambda s: data.failures(s, min(_int(query, "limit", 500), 5000)),
            "program": lambda s: data.program(s, int(rest[0])),
        }
        self._json(run.ask(handlers[view]))


class _all_locked:
    def __init__(self, runs: list[Run]) -> None:
        self.runs = runs

    def __enter__(self) -> None:
        for r in self.runs:
            r.lock.acquire()

    def __exit__(self, *exc: object) -> None:
        for r in self.runs:
            r.lock.release()


def _same(given: str, token: str) -> bool:
    """Constant-time comparison as bytes (compare_digest on str refuses non-ASCII text: a crafted cookie
    dropped the connection instead of getting its 403)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode())


def serve(runs: list[Path], host: str, port: int, on_ready: Callable[[str], None], token: bool = False) -> None:
    server = UIServer(runs, host, port, token)
    on_ready(server.url)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        for r in server.runs:
            r.store.close()
        time.sleep(0)
