"""The candidate program of a peer-layout folder, kept in a jail of its own (written for evolve).

An OpenEvolve or ShinkaEvolve evaluator loads "the program" from a path and calls it. Under evolve the
file at that path is a stand-in: loading it (by import, ``exec`` of its text, ``runpy``, or from a
subprocess of the evaluator) attaches it to the real program, which runs in a second jail (its own PID,
user and mount namespaces; no view of the evaluator's files or processes). Calls cross as plain data:
numbers, strings, bytes, lists, tuples, dicts, numpy arrays; an object that is none of these stays in
the candidate's jail and the evaluator holds a handle to it (attribute access, calls, indexing, len and
iteration are forwarded). Nothing the candidate does can write the evaluator's result: it can only
answer the calls it is asked.

This module is self-contained (the standard library, numpy where present): the same file serves the
candidate's side (:func:`host`), the relay in the evaluator's process (:func:`relay`) and the stand-in
(:func:`attach`), in whichever interpreter loads it.
"""

from __future__ import annotations

import io
import json
import math
import os
import socket
import struct
import sys
import threading
import traceback
import types
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

ENV = "EVOLVE_CANDIDATE"  # the relay's socket path, for the evaluator's processes
MAX_JSON = 64 << 20
MAX_BYTES = 1 << 30
_HEADER = struct.Struct(">I")
_NUMERIC_KINDS = "biufc"  # numpy dtypes that cross: booleans, integers, floats, complex (never objects)


class CandidateError(RuntimeError):
    """The candidate raised, or answered something that is not plain data."""


# -- frames --------------------------------------------------------------------------------------
def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the connection")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _recv_frame(sock: socket.socket, limit: int) -> bytes:
    (size,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    if size > limit:
        raise CandidateError(f"a message of {size} bytes is over the limit")
    return _recv_exact(sock, size)


def recv_message(sock: socket.socket) -> list[bytes]:
    """One message as frames: its JSON, then as many bytes frames as the JSON says (within limits)."""
    head = _recv_frame(sock, MAX_JSON)
    try:
        count = json.loads(head).get("$blobs", 0)
    except (ValueError, AttributeError, RecursionError):
        raise CandidateError("a message that is not a JSON object") from None
    if not isinstance(count, int) or count < 0:
        raise CandidateError("a message with a bad frame count")
    frames, budget = [head], MAX_BYTES
    for _ in range(count):
        frames.append(_recv_frame(sock, budget))
        budget -= len(frames[-1])
    return frames


def send_message(sock: socket.socket, frames: list[bytes]) -> None:
    sock.sendall(b"".join(_HEADER.pack(len(f)) + f for f in frames))


# -- plain data ----------------------------------------------------------------------------------
def encode(value: Any, handles: Any = None) -> list[bytes]:
    """A value as frames. Objects that are not plain data become handles (``handles.put``) or, without a
    handle table, an error."""
    blobs: list[bytes] = []

    def out(v: Any) -> Any:
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int):
            return v if abs(v) < 2**63 else {"$int": str(v)}
        if isinstance(v, float):
            return v if math.isfinite(v) else {"$float": repr(v)}
        if isinstance(v, (bytes, bytearray)):
            blobs.append(bytes(v))
            return {"$blob": len(blobs) - 1}
        if isinstance(v, tuple):
            return {"$tuple": [out(x) for x in v]}
        if isinstance(v, list):
            return [out(x) for x in v]
        if isinstance(v, dict):
            if all(isinstance(k, str) for k in v):
                return {"$dict": {k: out(x) for k, x in v.items()}}
            return {"$pairs": [[out(k), out(x)] for k, x in v.items()]}
        if isinstance(v, Remote):
            return {"$handle": v._handle}
        numpy = sys.modules.get("numpy")
        if numpy is not None and isinstance(v, numpy.ndarray) and v.dtype.kind in _NUMERIC_KINDS:
            blobs.append(numpy.ascontiguousarray(v).tobytes())
            return {"$ndarray": {"dtype": v.dtype.str, "shape": list(v.shape), "data": len(blobs) - 1}}
        if numpy is not None and isinstance(v, numpy.generic) and v.dtype.kind in _NUMERIC_KINDS:
            return {"$npscalar": {"dtype": v.dtype.str, "value": out(v.item())}}
        if handles is not None:
            return {"$handle": handles.put(v), "type": type(v).__name__}
        raise CandidateError(f"a {type(v).__name__} cannot cross to the candidate's jail (plain data only)")

    text = json.dumps({"v": out(value), "$blobs": len(blobs)}, allow_nan=False).encode()
    return [text, *blobs]


def decode(frames: list[bytes], link: Any = None, handles: Any = None) -> Any:
    """Frames back into a value; handles become :class:`Remote` objects on ``link`` (evaluator side) or the
    objects they stand for (candidate side, ``handles.get``)."""
    blobs = frames[1:]
    try:
        head = json.loads(frames[0])
    except (ValueError, RecursionError):
        raise CandidateError("a message that is not JSON") from None

    def blob(i: Any) -> bytes:
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(blobs):
            raise CandidateError("a bad bytes reference")
        return blobs[i]

    def inside(v: Any) -> Any:
        if isinstance(v, list):
            return [inside(x) for x in v]
        if not isinstance(v, dict):
            return v
        if len(v) != 1 and not ("$handle" in v and len(v) == 2):
            raise CandidateError("a malformed value")
        key, body = next(iter(v.items())) if "$handle" not in v else ("$handle", v["$handle"])
        if key == "$dict" and isinstance(body, dict):
            return {str(k): inside(x) for k, x in body.items()}
        if key == "$pairs" and isinstance(body, list):
            return {_hashable(inside(k)): inside(x) for k, x in body}
        if key == "$tuple" and isinstance(body, list):
            return tuple(inside(x) for x in body)
        if key == "$blob":
            return blob(body)
        if key == "$int" and isinstance(body, str):
            return int(body)
        if key == "$float" and body in ("nan", "inf", "-inf"):
            return float(body)
        if key in ("$ndarray", "$npscalar") and isinstance(body, dict):
            import numpy

            dtype = numpy.dtype(str(body.get("dtype")))
            if dtype.kind not in _NUMERIC_KINDS:
                raise CandidateError(f"an array of dtype {dtype} cannot cross")
            if key == "$npscalar":
                return dtype.type(inside(body.get("value")))
            shape = [int(s) for s in body.get("shape", [])]
            return numpy.frombuffer(blob(body.get("data")), dtype=dtype).reshape(shape).copy()
        if key == "$handle" and isinstance(body, int):
            if link is not None:
                return Remote(link, body, str(v.get("type", "object")))
            if handles is not None:
                return handles.get(body)
        raise CandidateError("a malformed value")

    try:
        return inside(head.get("v") if isinstance(head, dict) else None)
    except (RecursionError, TypeError, ValueError) as exc:
        raise CandidateError(f"a malformed value: {exc}") from None


def _hashable(v: Any) -> Any:
    return tuple(_hashable(x) for x in v) if isinstance(v, list) else v


# -- the candidate's side ------------------------------------------------------------------------
class _Handles:
    def __init__(self) -> None:
        self.objects: dict[int, Any] = {}

    def put(self, obj: Any) -> int:
        self.objects[len(self.objects) + 1] = obj
        return len(self.objects)

    def get(self, handle: int) -> Any:
        if handle not in self.objects:
            raise CandidateError(f"no object {handle}")
        return self.objects[handle]


def _load(code: str, filename: str, as_main: bool) -> types.ModuleType:
    module = types.ModuleType("__main__" if as_main else "program")
    module.__file__ = filename
    sys.modules.setdefault(module.__name__, module)
    exec(compile(code, filename, "exec"), module.__dict__)
    return module


def _answer(request: Any, code: str, filename: str, handles: _Handles) -> Any:
    op = request.get("op") if isinstance(request, dict) else None
    if op == "load":  # a fresh instance of the program, as a new import of the file would give
        return handles.put(_load(code, filename, as_main=False))
    if op == "main":
        out, err = io.StringIO(), io.StringIO()
        status: Any = 0
        with redirect_stdout(out), redirect_stderr(err):
            try:
                _load(code, filename, as_main=True)
            except SystemExit as exc:
                status = exc.code
            except BaseException:  # noqa: BLE001 - a failing script reports as a failing script
                traceback.print_exc()
                status = 1
        return {"stdout": out.getvalue(), "stderr": err.getvalue(), "status": status}
    target = handles.get(request.get("handle"))
    if op == "names":
        return [n for n in dir(target) if not n.startswith("__")]
    if op == "getattr":
        return getattr(target, str(request.get("name")))
    if op == "call":
        return target(*request.get("args", ()), **request.get("kwargs", {}))
    if op == "getitem":
        return target[request.get("key")]
    if op == "len":
        return len(target)
    if op == "iter":
        return list(target)
    if op == "repr":
        return repr(target)
    raise CandidateError(f"unknown request {op!r}")


def host(fd: int) -> None:
    """The candidate's jail: receive the program's code, then answer requests until the link closes."""
    sock = socket.socket(fileno=fd)
    first = decode(recv_message(sock))
    code, filename = first["code"], first["filename"]
    handles = _Handles()
    while True:
        try:
            request = decode(recv_message(sock), handles=handles)
        except EOFError:
            return
        try:
            reply = {"ok": _answer(request, code, filename, handles)}
            frames = encode(reply, handles)
        except BaseException as exc:  # noqa: BLE001 - the candidate may raise anything
            frames = encode({"error": f"{type(exc).__name__}: {exc}"[:4000]})
        send_message(sock, frames)


# -- the evaluator's side ------------------------------------------------------------------------
def relay(candidate: socket.socket, path: str) -> None:
    """Serve the evaluator's processes on ``path``: each request is handed to the candidate in turn."""
    lock = threading.Lock()
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(64)

    def client(conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    frames = recv_message(conn)
                except (EOFError, OSError, CandidateError):
                    return
                with lock:
                    send_message(candidate, frames)
                    reply = recv_message(candidate)
                send_message(conn, reply)

    def accept() -> None:
        while True:
            conn, _ = server.accept()
            threading.Thread(target=client, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


class _Link:
    """One connection of an evaluator process to the relay."""

    def __init__(self) -> None:
        path = os.environ.get(ENV)
        if not path:
            raise CandidateError(f"no candidate to attach to ({ENV} is not set)")
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.lock = threading.Lock()

    def ask(self, **request: Any) -> Any:
        with self.lock:
            send_message(self.sock, encode(request))
            reply = decode(recv_message(self.sock), link=self)
        if not isinstance(reply, dict):
            raise CandidateError("the candidate answered something that is not a reply")
        if "error" in reply:
            raise CandidateError(str(reply["error"]))
        return reply.get("ok")


class Remote:
    """An object that lives in the candidate's jail: what is done to it is asked of the candidate."""

    def __init__(self, link: _Link, handle: int, kind: str = "object") -> None:
        object.__setattr__(self, "_link", link)
        object.__setattr__(self, "_handle", handle)
        object.__setattr__(self, "_kind", kind)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._link.ask(op="getattr", handle=self._handle, name=name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._link.ask(op="call", handle=self._handle, args=list(args), kwargs=kwargs)

    def __getitem__(self, key: Any) -> Any:
        return self._link.ask(op="getitem", handle=self._handle, key=key)

    def __len__(self) -> int:
        return int(self._link.ask(op="len", handle=self._handle))

    def __iter__(self) -> Any:
        return iter(self._link.ask(op="iter", handle=self._handle))

    def __repr__(self) -> str:
        return f"<candidate {self._kind} {self._link.ask(op='repr', handle=self._handle)}>"


def attach(namespace: dict[str, Any]) -> None:
    """Make the module whose globals are ``namespace`` stand for a fresh instance of the candidate program."""
    link = _Link()
    if namespace.get("__name__") == "__main__":  # run as a script: the candidate runs as one
        result = link.ask(op="main")
        sys.stdout.write(result.get("stdout", ""))
        sys.stderr.write(result.get("stderr", ""))
        raise SystemExit(result.get("status", 0))
    module = Remote(link, link.ask(op="load"), "module")
    for name in link.ask(op="names", handle=module._handle):
        namespace[name] = module.__getattr__(name)
    namespace["__getattr__"] = module.__getattr__  # names the program defines later
