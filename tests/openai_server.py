"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions API, scripted by a test.

The LLM tests and benchmarks drive litellm against it exactly as in production: the server sees
real HTTP requests (headers included) and answers with real status codes, delays and bodies.
``script(request) -> Reply`` decides each answer; every request is recorded.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    content: str | None = ""
    status: int = 200
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    raw_body: str | None = None  # sent as is (garbage JSON...) instead of a completion
    prompt_tokens: int | None = None  # default: ~ characters / 4 of the prompt
    completion_tokens: int | None = None


@dataclass
class Request:
    body: dict[str, Any]
    headers: dict[str, str]
    received_at: float

    @property
    def prompt(self) -> str:
        return "\n".join(str(m.get("content", "")) for m in self.body.get("messages", []))


Script = Callable[[Request], Reply]


class OpenAIServer:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {}
                req = Request(body, {k.lower(): v for k, v in self.headers.items()}, time.time())
                with server._lock:
                    server.requests.append(req)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    return self._send(404, json.dumps({"error": {"message": f"no route {self.path}"}}), {})
                reply = server.script(req)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.raw_body is not None:
                    return self._send(reply.status, reply.raw_body, reply.headers)
                if reply.status != 200:
                    err = {"error": {"message": f"scripted {reply.status}", "type": "scripted", "code": reply.status}}
                    return self._send(reply.status, json.dumps(err), reply.headers)
                content = reply.content or ""
                usage = {
                    "prompt_tokens": reply.prompt_tokens if reply.prompt_tokens is not None else len(req.prompt) // 4,
                    "completion_tokens": reply.completion_tokens
                    if reply.completion_tokens is not None
                    else len(content) // 4,
                }
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                completion = {
                    "id": f"chatcmpl-{len(server.requests)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "scripted"),
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                    ],
                    "usage": usage,
                }
                self._send(200, json.dumps(completion), reply.headers)

            def _send(self, status: int, text: str, headers: dict[str, str]) -> None:
                data = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> OpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
