"""A peer-layout folder's candidate in a jail of its own, apart from the folder's evaluator.

OpenEvolve and ShinkaEvolve run the evaluator and the candidate in one process, so a candidate can set
its own score (append code that writes the result, patch the evaluator, exit early). Here the file the
evaluator loads is a stand-in (:func:`stand_in`): the real program runs in a second jail, nested in the
evaluator's, and answers the evaluator's calls through plain data (shims/evolve_candidate.py). The
sandbox passes the second jail's command line in :data:`JAIL_ENV` where it can build one; without it
(no isolation, or a kernel that refuses nested namespaces) the program runs with the evaluator as in
the peers, and the run says its fitness is self-reported.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SHIMS = Path(__file__).resolve().parent / "shims"
JAIL_ENV = "EVOLVE_CANDIDATE_JAIL"  # JSON list: the command line that starts a process in the candidate's jail
CANDIDATE_FILE = "/tmp/program.py"  # the program's file name as the candidate sees it


def available() -> bool:
    """Will the candidate run apart from the evaluator here (in the jailed child)?"""
    return bool(os.environ.get(JAIL_ENV))


def stand_in(code: str) -> str:
    """The file the evaluator loads instead of the program: its source is kept, for reading only."""
    return (
        "# evolve: this file stands for the candidate program, which runs in a jail of its own; loading it\n"
        "# attaches to it, and calls cross as plain data (numbers, strings, lists, arrays).\n"
        "import evolve_candidate as _evolve_candidate\n\n"
        f"SOURCE = {code!r}\n\n"
        "_evolve_candidate.attach(globals())\n"
    )


@contextmanager
def candidate(code: str, workdir: Path, folder: Path) -> Iterator[None]:
    """Start the candidate's jail for the evaluator's processes (this one and those it starts) and stop it
    afterwards."""
    if str(SHIMS) not in sys.path:
        sys.path.insert(0, str(SHIMS))
    import evolve_candidate  # type: ignore[import-not-found]  # the shim, on the evaluator path only

    prefix = json.loads(os.environ[JAIL_ENV])
    ours, theirs = socket.socketpair()
    boot = (
        f"import sys; sys.path[:0] = [{str(SHIMS)!r}, {str(folder)!r}]; "
        f"import evolve_candidate; evolve_candidate.host({theirs.fileno()})"
    )
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-I", "-c", boot], pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL
    )
    theirs.close()
    try:
        evolve_candidate.send_message(ours, evolve_candidate.encode({"code": code, "filename": CANDIDATE_FILE}))
        path = str(workdir / ".candidate.sock")
        evolve_candidate.relay(ours, path)
        os.environ[evolve_candidate.ENV] = path
        os.environ["PYTHONPATH"] = os.pathsep.join([str(SHIMS), *filter(None, [os.environ.get("PYTHONPATH")])])
        yield
    finally:
        proc.kill()
        proc.wait()
        ours.close()
