"""Frames on a pipe: how a jailed child hands its result to its server, and a server its reply to the
caller. Plain data only (JSON; raw bytes as frames of their own, never pickle), every frame length-
prefixed and bounded, every read on the caller's side bounded by a deadline: a server that stops
mid-frame, sends garbage or floods costs the caller its limit and no more.

A message is one JSON frame followed by the raw-bytes frames it refers to: ``{"$blob": i}`` in the JSON
stands for the i-th bytes frame after it.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

BLOB_KEY = "$blob"
_HEADER = struct.Struct(">I")


class ProtocolError(Exception):
    """The other side sent something that is not a well-formed, in-limit message."""


def pack(payload: bytes) -> bytes:
    return _HEADER.pack(len(payload)) + payload


def encode(message: dict[str, Any]) -> list[bytes]:
    """The frames of a message: its JSON (bytes values replaced by references), then the bytes values."""
    blobs: list[bytes] = []

    def out(value: Any) -> Any:
        if isinstance(value, (bytes, bytearray, memoryview)):
            blobs.append(bytes(value))
            return {BLOB_KEY: len(blobs) - 1}
        if isinstance(value, dict):
            return {str(k): out(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [out(v) for v in value]
        return value

    text = json.dumps({**out(message), "$blobs": len(blobs)}, allow_nan=False).encode()
    return [text, *blobs]


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def send(fd: int, message: dict[str, Any]) -> None:
    for frame in encode(message):
        write_all(fd, pack(frame))


def decode(frames: list[bytes]) -> dict[str, Any]:
    """A message from its frames; raises ProtocolError for anything but a JSON object with valid references."""
    if not frames:
        raise ProtocolError("no message")
    try:
        head = json.loads(frames[0])
    except (ValueError, RecursionError):
        raise ProtocolError("the message is not JSON") from None
    if not isinstance(head, dict):
        raise ProtocolError("the message is not a JSON object")
    blobs = frames[1:]
    if head.pop("$blobs", None) != len(blobs):
        raise ProtocolError("the message's bytes frames do not match its header")

    def inside(value: Any) -> Any:
        if isinstance(value, dict):
            ref = value.get(BLOB_KEY)
            if len(value) == 1 and BLOB_KEY in value:
                if not isinstance(ref, int) or isinstance(ref, bool) or not 0 <= ref < len(blobs):
                    raise ProtocolError(f"bad bytes reference {ref!r}")
                return blobs[ref]
            return {k: inside(v) for k, v in value.items()}
        if isinstance(value, list):
            return [inside(v) for v in value]
        return value

    try:
        return dict(inside(head))
    except RecursionError:
        raise ProtocolError("the message is nested too deeply") from None


def count_frames(head: bytes) -> int:
    """How many bytes frames follow a message's JSON frame (read from its header without trusting more)."""
    try:
        n = json.loads(head).get("$blobs", 0)
    except (ValueError, AttributeError, RecursionError):
        raise ProtocolError("the message is not a JSON object") from None
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ProtocolError("bad frame count")
    return n


class Reader:
    """Reads frames from a file descriptor; every read waits at most until the deadline it is given (None:
    for as long as it takes, only where the other side is trusted)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = bytearray()
        os.set_blocking(fd, False)

    def _fill(self, n: int, deadline: float | None) -> None:
        while len(self._buffer) < n:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError("no answer in time")
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(self.fd, max(65536, min(n - len(self._buffer), 1 << 24)))
            except BlockingIOError:
                continue
            if not chunk:
                raise EOFError("the other side closed the pipe")
            self._buffer += chunk

    def frame(self, deadline: float | None, limit: int) -> bytes:
        self._fill(_HEADER.size, deadline)
        (size,) = _HEADER.unpack(self._buffer[: _HEADER.size])
        if size > limit:
            raise ProtocolError(f"a frame of {size} bytes is over the limit of {limit}")
        self._fill(_HEADER.size + size, deadline)
        data = bytes(self._buffer[_HEADER.size : _HEADER.size + size])
        del self._buffer[: _HEADER.size + size]
        return data

    def message(self, deadline: float | None, json_limit: int, bytes_limit: int) -> dict[str, Any]:
        """One message: its JSON at most ``json_limit`` bytes, its bytes frames at most ``bytes_limit`` together."""
        head = self.frame(deadline, json_limit)
        frames = [head]
        budget = bytes_limit
        for _ in range(count_frames(head)):
            frames.append(self.frame(deadline, budget))
            budget -= len(frames[-1])
        return decode(frames)
