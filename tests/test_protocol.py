"""The frames between a jailed child, its server and the caller: plain data, bounded, and a deadline on
every read; a server that answers out of turn, stops mid-frame or sends garbage is replaced."""

from __future__ import annotations

import os
import threading
import time

import pytest

from evaluators import pool
from evaluators.limits import StageLimits
from evaluators.pool import JailedServer, JailSpec, ServerDied
from evaluators.protocol import ProtocolError, Reader, decode, encode, pack, send
from evolve.config import EvaluatorConfig
from evolve.loader import builtin_problems
from evolve.problem import Stage


def test_a_message_with_bytes_round_trips_as_plain_data() -> None:
    message = {"ok": True, "artifacts": {"w": b"\x00\x01" * 10, "nested": [b"x", {"n": 1.5}], "s": "text"}}
    frames = encode(message)
    assert len(frames) == 3 and b"\x00\x01" not in frames[0]
    assert decode(frames) == message


@pytest.mark.parametrize(
    "frames, error",
    [
        ([b"not json"], "not JSON"),
        ([b"[1, 2]"], "not a JSON object"),
        ([b'{"a": {"$blob": 3}, "$blobs": 1}', b"x"], "bad bytes reference"),
        ([b'{"a": 1, "$blobs": 2}', b"x"], "do not match"),
        ([b"[" * 100_000 + b"]" * 100_000], "JSON"),
    ],
)
def test_malformed_messages_are_refused(frames: list[bytes], error: str) -> None:
    with pytest.raises(ProtocolError, match=error):
        decode(frames)


def test_a_reader_gives_up_at_its_deadline_on_half_a_frame() -> None:
    r, w = os.pipe()
    os.write(w, pack(b'{"$blobs": 0}')[:6])  # the length and two bytes of the payload, then nothing
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        Reader(r).frame(time.monotonic() + 0.3, 1 << 20)
    assert time.monotonic() - start < 1.0
    os.close(r)
    os.close(w)


def test_a_frame_over_its_limit_is_refused_before_it_is_read() -> None:
    r, w = os.pipe()
    os.write(w, (10**9).to_bytes(4, "big"))
    with pytest.raises(ProtocolError, match="over the limit"):
        Reader(r).frame(time.monotonic() + 1, 1 << 20)
    os.close(r)
    os.close(w)


def test_bytes_frames_share_one_budget() -> None:
    r, w = os.pipe()
    writer = threading.Thread(target=send, args=(w, {"a": b"x" * 3000, "b": b"y" * 3000}))
    writer.start()
    with pytest.raises(ProtocolError):
        Reader(r).message(time.monotonic() + 5, 1 << 16, 5000)
    os.close(r)
    writer.join()
    os.close(w)


# A stand-in server that says it is ready, then answers every job with the wrong sequence number.
OUT_OF_TURN = (
    "import os, sys; sys.path.insert(0, {root!r})\n"
    "from evaluators.protocol import Reader, send\n"
    "inbox = Reader(0)\n"
    "inbox.message(None, 1 << 20, 0)\n"
    "send(1, {{'ready': True}})\n"
    "while True:\n"
    "    job = inbox.message(None, 1 << 30, 0)\n"
    "    send(1, {{'seq': job['seq'] + 7, 'returncode': 0, 'timed_out': False, 'result': [],\n"
    "             'output': '', 'over_limit': None, 'result_error': None}})\n"
)


def test_a_reply_out_of_turn_kills_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool, "_BOOT", OUT_OF_TURN.format(root=str(pool.jail.REPO_ROOT)))
    cfg = EvaluatorConfig(isolation="none", timeout_s=5)
    limits = StageLimits.for_stage(cfg, Stage("quick"))
    folder = str(builtin_problems()["function_min"])
    server = JailedServer(JailSpec.of(folder, {}, "none", (), limits), warm=False)
    try:
        with pytest.raises(ServerDied, match="out of turn"):
            server.run({"problem_folder": folder, "options": {}, "code": "", "stage": "quick"}, limits)
    finally:
        server.close()
