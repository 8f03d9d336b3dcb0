"""Soak: one long function_min run through the CLI (20,000 evaluations by default), killed with SIGKILL
every 2,000 and continued with `evolve resume` each time. The controller's memory after warm-up must stay
flat (within 10%) over every segment, nothing may be left behind (processes, temporary directories,
cgroups: a resume sweeps what a killed run left), the budget must be met exactly and the archive's
integrity check must be clean.

Usage: .venv/bin/python benchmarks/soak.py [EVALUATIONS [KILL_EVERY]]
"""

from __future__ import annotations

import glob
import os
import signal
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


def finished(run_dir: Path) -> int:
    try:
        return int(
            sqlite3.connect(f"file:{run_dir / 'archive.sqlite'}?mode=ro", uri=True)
            .execute("SELECT COUNT(*) FROM programs WHERE status IN ('evaluated','failed') AND operator != 'seed'")
            .fetchone()[0]
        )
    except sqlite3.Error:
        return 0


def main(evaluations: int, kill_every: int) -> None:
    """One run of ``evaluations`` through the CLI, killed with SIGKILL each time another ``kill_every``
    evaluations have finished and continued with `evolve resume`: per segment, the controller's memory after
    the segment's warm-up and its rate; after every kill, what the killed run left once the resume is going."""
    segments: list[dict[str, float]] = []
    left: dict[str, list[str]] = {"processes": [], "temporary directories": [], "cgroups": []}
    pids: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        run_dir, run_tmp = Path(tmp) / "soak", Path(tmp) / "tmp"
        run_tmp.mkdir()
        env = {**os.environ, "TMPDIR": str(run_tmp)}
        evolve = str(ROOT / ".venv/bin/evolve")
        first = [evolve, "run", str(ROOT / "configs/function_min.yaml"), "--run-dir", str(run_dir)]
        cmd = [*first, "--max-evaluations", str(evaluations)]
        t0 = time.monotonic()
        while True:
            start, at_start, samples = time.monotonic(), finished(run_dir), []
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            killed = pids[-1] if pids else None  # its leftovers: counted once this run has started and swept
            pids.append(proc.pid)
            target = min(evaluations, at_start + kill_every)
            while proc.poll() is None:
                time.sleep(2)
                done = finished(run_dir)
                samples.append((done, rss_mb(proc.pid)))
                if killed is not None and time.monotonic() - start > 10:
                    for k, v in leftovers(killed, str(run_tmp)).items():
                        left[k] += v
                    killed = None
                if done >= target and target < evaluations:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    break
            if killed is not None:
                for k, v in leftovers(killed, str(run_tmp)).items():
                    left[k] += v
            seconds = time.monotonic() - start
            end = finished(run_dir)
            warm = [r for d, r in samples if d >= at_start + 0.1 * (end - at_start) and r > 0]
            segments.append(
                {
                    "from": at_start,
                    "to": end,
                    "rss_low": min(warm, default=0.0),
                    "rss_high": max(warm, default=0.0),
                    "per_min": 60 * (end - at_start) / seconds,
                }
            )
            if proc.returncode == 0 or end >= evaluations:
                break
            cmd = [evolve, "resume", str(run_dir)]
        wall = time.monotonic() - t0
        time.sleep(2)
        for pid in pids:
            for k, v in leftovers(pid, str(run_tmp)).items():
                left[k] += v
        conn = sqlite3.connect(run_dir / "archive.sqlite")
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        done = finished(run_dir)
        total = conn.execute("SELECT COUNT(*) FROM programs").fetchone()[0]
        size = sum(f.stat().st_size for f in run_dir.iterdir()) / 1e6
    highs = [seg["rss_high"] for seg in segments if seg["rss_high"] > 0]
    lows = [seg["rss_low"] for seg in segments if seg["rss_low"] > 0]
    rows = [
        [
            f"{int(seg['from'])}-{int(seg['to'])}",
            f"{seg['rss_low']:.0f}-{seg['rss_high']:.0f}",
            f"{seg['per_min']:.0f}",
            "finished" if i == len(segments) - 1 else "kill -9, then `evolve resume`",
        ]
        for i, seg in enumerate(segments)
    ]
    text = markdown(["evaluations", "controller RSS after warm-up (MB)", "evaluations / min", "ended by"], rows) + (
        f"\n\n{done} evaluations ({total} programs stored, archive {size:.0f} MB) in {wall / 60:.1f} min, "
        f"{len(segments) - 1} kills. Controller memory after warm-up over all segments: {min(lows):.0f}-"
        f"{max(highs):.0f} MB, spread {100 * (max(highs) - min(lows)) / min(lows):.1f}% (goal: within 10%). "
        "Left behind by the killed runs and the last one: "
        + ", ".join(f"{k}: {len(v)}" for k, v in left.items())
        + f". Integrity check: {integrity}. One run.\n\n"
        f"`.venv/bin/python benchmarks/soak.py {evaluations} {kill_every}`"
    )
    publish("soak", text, ("benchmarks/RESULTS.md",))
    print(text)
    leaks = {k: v for k, v in left.items() if v}
    if leaks or integrity != "ok" or done != evaluations:
        sys.exit(f"soak: {done} of {evaluations} evaluations, left behind {leaks}, integrity {integrity}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000, int(sys.argv[2]) if len(sys.argv) > 2 else 2_000)
