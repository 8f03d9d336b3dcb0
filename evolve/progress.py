"""What a run shows while it goes: the live table on a terminal, plain progress lines elsewhere (a log
file, nohup, CI, a batch scheduler), so that a run without a terminal never looks hung."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.table import Table

from evolve.jsonsafe import printable

if TYPE_CHECKING:
    from evolve.controller import Progress


def fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def progress_table(p: Progress) -> Table:
    t = Table(title="evolve", show_header=False, box=None)
    t.add_row("evaluations", f"{p.evaluations} / {p.budget}  (in flight {p.in_flight})")
    t.add_row("best fitness", "-" if p.best_fitness is None else f"{p.best_fitness:.5g}  (program {p.best_program_id})")
    if p.champion_id is not None:
        t.add_row("champion", f"program {p.champion_id}, validated fitness {fmt(p.champion_fitness, 5)}")
    t.add_row("best per island", "  ".join(fmt(b) for b in p.island_best))
    t.add_row("failures", ", ".join(f"{k}: {v}" for k, v in sorted(p.failures.items())) or "none")
    t.add_row("rejected", ", ".join(f"{k}: {v}" for k, v in sorted(p.rejections.items())) or "none")
    t.add_row("evaluations / min", f"{p.per_minute:.1f}")
    if p.llm_tokens is not None:
        t.add_row("llm spend", f"{p.llm_tokens} tokens, ${p.llm_cost or 0:.4f} (calls of unknown price count 0)")
    if p.stop_reason:
        t.add_row("stopped", printable(p.stop_reason))
    return t


def progress_line(p: Progress) -> str:
    """One plain line of progress (where there is no terminal for the live table)."""
    elapsed = int(time.monotonic() - p.started)
    parts = [
        f"progress [{elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}]",
        f"{p.evaluations}/{p.budget} evaluations",
        "best -" if p.best_fitness is None else f"best {p.best_fitness:.5g} (program {p.best_program_id})",
    ]
    if p.champion_id is not None:
        parts.append(f"champion {fmt(p.champion_fitness, 5)} (program {p.champion_id})")
    parts += [
        f"failures {sum(p.failures.values())}",
        f"rejected {sum(p.rejections.values())}",
        f"{p.per_minute:.1f}/min",
        f"in flight {p.in_flight}",
    ]
    if p.llm_tokens is not None:
        parts.append(f"llm spend {p.llm_tokens} tokens ${p.llm_cost or 0:.4f}")
    return " | ".join(parts)


class ProgressLog:
    """Without a terminal: a line at once, then every ``every`` evaluations or ``seconds``, and at the end."""

    def __init__(self, every: int, seconds: float, write: Callable[[str], None]) -> None:
        self.every, self.seconds, self.write = every, seconds, write
        self.logged_at: int | None = None  # evaluations at the last line (None: no line yet)
        self.last = time.monotonic()
        self.printed = ""

    def __call__(self, p: Progress, final: bool = False) -> None:
        if not (self.every or self.seconds):
            return
        first = self.logged_at is None  # at once: a log shows the run is alive before its seed is scored
        due_count = self.every and self.logged_at is not None and p.evaluations - self.logged_at >= self.every
        due_time = self.seconds and time.monotonic() - self.last >= self.seconds
        if first or due_count or due_time or final:
            line = progress_line(p)
            if final and line.split(" | ", 1)[1] == self.printed.split(" | ", 1)[-1]:
                return  # the run's last state is already the last line
            self.logged_at, self.last, self.printed = p.evaluations, time.monotonic(), line
            self.write(line)
