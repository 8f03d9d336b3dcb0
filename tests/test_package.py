"""The package as a user installs it: a wheel built from the source tree, installed (not editable) into a
fresh virtual environment, runs a problem from another directory. Prompts, problem seeds, cached curves
and the web view's files must come from the installed package, not from the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow  # builds a wheel and runs it


def _run(cmd: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_a_wheel_installed_into_a_fresh_venv_runs_from_another_directory(tmp_path: Path) -> None:
    # Build from a copy of the source, so nothing left in build/ by an earlier build can reach the wheel.
    src = tmp_path / "src"
    shutil.copytree(
        REPO,
        src,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "*.egg-info", "runs", "__pycache__", ".pytest_cache", "tests", "benchmarks"
        ),
    )
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ],
        cwd=tmp_path,
    )
    wheel = next((tmp_path / "dist").glob("evolve-*.whl"))
    fresh = tmp_path / "fresh"
    _run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], cwd=tmp_path)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(fresh / "bin" / "python"),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        cwd=tmp_path,
    )
    # The dependencies (torch, Ray...) come from the project's environment: installing them again would take
    # minutes and the network. A path added by a .pth file is not a site directory, so the project's own
    # editable install (a .pth hook there) stays inactive: evolve itself can only come from the wheel.
    site = Path(
        _run(
            [str(fresh / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            cwd=tmp_path,
        ).stdout.strip()
    )
    (site / "project-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run(
        [
            str(fresh / "bin" / "python"),
            "-c",
            "import evolve, problems, prompts, islands, evaluators; "
            "print('\\n'.join(m.__file__ for m in (evolve, problems, prompts, islands, evaluators)))",
        ],
        cwd=elsewhere,
    ).stdout.split()
    assert all(path.startswith(str(site)) for path in where), where

    shutil.copy(REPO / "configs" / "function_min.yaml", elsewhere / "my.yaml")
    _run([str(fresh / "bin" / "evolve"), "run", "my.yaml", "--run-dir", "run", "--max-evaluations", "8"], cwd=elsewhere)
    status = json.loads(_run([str(fresh / "bin" / "evolve"), "status", "run", "--json"], cwd=elsewhere).stdout)
    assert status["state"] == "finished" and status["evaluations"] == 8
    assert status["by_status"].get("evaluated", 0) >= 1
    # the package's data files: the built-in problems' seeds and the web view's static files
    problems = json.loads(_run([str(fresh / "bin" / "evolve"), "problems", "--json"], cwd=elsewhere).stdout)
    assert {"function_min", "optimizer_discovery"} <= {p["name"] for p in problems}
    assert (site / "evolve" / "ui" / "static" / "app.js").is_file()
    assert (site / "problems" / "optimizer_discovery" / "adamw_curves.json").is_file()
    assert list((site / "prompts").glob("*.md"))
