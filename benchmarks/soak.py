"""Soak: one long function_min run through the CLI (20,000 evaluations by default). The controller's
memory after warm-up must stay flat (within 10%), nothing may be left behind (processes, temporary
directories, cgroups) and the archive's integrity check must be clean.

Usage: .venv/bin/python benchmarks/soak.py [EVALUATIONS]
"""

from __future__ import annotations

import glob
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tables import ROOT, markdown, publish  # noqa: E402


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def descendants(pid: int) -> list[int]:
    out = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            child = int(stat.split("/")[2])
            out += [child, *descendants(child)]
    return out


def leftovers(run_pid: int, tmp: str) -> dict[str, list[str]]:
    """What the run left: its cgroups (named after its pid), and the processes and temporary directories under
    its own TMPDIR (so other evolve runs on the machine do not count)."""
    cgroups = [
        p
        for p in glob.glob("/sys/fs/cgroup/*/evolve-*") + glob.glob("/sys/fs/cgroup/evolve-*")
        if f"evolve-{run_pid}-" in p
    ]
    procs = []
    for proc in glob.glob("/proc/[0-9]*"):
        try:
            cwd = os.readlink(f"{proc}/cwd")
            text = Path(f"{proc}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(tmp) or tmp in text:
            procs.append(text[:120])
    dirs = glob.glob(f"{tmp}/evolve-cand-*") + glob.glob(f"{tmp}/evolve-warm-*")
    return {"processes": procs, "temporary directories": dirs, "cgroups": cgroups}


def main(evaluations: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir, run_tmp = Path(tmp) / "soak", Path(tmp) / "tmp"
        run_tmp.mkdir()
        proc = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/evolve"),
                "run",
                str(ROOT / "configs/function_min.yaml"),
                "--run-dir",
                str(run_dir),
                "--max-evaluations",
                str(evaluations),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "TMPDIR": str(run_tmp)},
        )
        samples: list[tuple[float, int, float]] = []
        t0 = time.monotonic()
        while proc.poll() is None:
            time.sleep(5)
            try:
                done = (
                    sqlite3.connect(f"file:{run_dir / 'archive.sqlite'}?mode=ro", uri=True)
                    .execute("SELECT COUNT(*) FROM programs WHERE status IN ('evaluated','failed')")
                    .fetchone()[0]
                )
            except sqlite3.Error:
                done = 0
            samples.append((time.monotonic() - t0, done, rss_mb(proc.pid)))
        wall = time.monotonic() - t0
        time.sleep(2)
        after = leftovers(proc.pid, str(run_tmp))
        conn = sqlite3.connect(run_dir / "archive.sqlite")
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        done = conn.execute(
            "SELECT COUNT(*) FROM programs WHERE status IN ('evaluated','failed') AND operator != 'seed'"
        ).fetchone()[0]
        total = conn.execute("SELECT COUNT(*) FROM programs").fetchone()[0]
        size = sum(f.stat().st_size for f in run_dir.iterdir()) / 1e6
    warm = [s for s in samples if s[1] >= evaluations * 0.1 and s[2] > 0]  # 0: sampled as the process exited
    low, high = min(s[2] for s in warm), max(s[2] for s in warm)
    rows = [[f"{int(s[1])}", f"{s[2]:.0f}"] for s in warm[:: max(1, len(warm) // 8)]]
    text = markdown(["evaluations done", "controller RSS (MB)"], rows) + (
        f"\n\n{done} evaluations ({total} programs stored, archive {size:.0f} MB) in {wall / 60:.1f} min "
        f"({60 * done / wall:.0f}/min). Controller memory after warm-up (10% of the budget): {low:.0f}-{high:.0f} MB, "
        f"spread {100 * (high - low) / low:.1f}% (goal: within 10%). Left behind: "
        + ", ".join(f"{k}: {len(v)}" for k, v in after.items())
        + f". Integrity check: {integrity}.\n\n`.venv/bin/python benchmarks/soak.py {evaluations}`"
    )
    publish("soak", text, ("benchmarks/RESULTS.md",))
    print(text)
    leaks = {k: v for k, v in after.items() if v}
    if leaks or integrity != "ok":
        sys.exit(f"soak: left behind {leaks}, integrity {integrity}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
