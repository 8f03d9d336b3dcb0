"""Shared helpers: drive the real CLI in a child process and read the real archive."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def evolve_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "evolve.cli", *args]


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 300, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        evolve_cmd(*args),
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"evolve {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def cli_json(*args: str, cwd: Path | None = None) -> Any:
    return json.loads(run_cli(*args, "--json", cwd=cwd).stdout)


def db(run_dir: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(run_dir / "archive.sqlite")
    conn.row_factory = sqlite3.Row
    return conn
