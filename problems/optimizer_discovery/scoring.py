"""A task's score: the tuned-AdamW budget that reaches the candidate's loss, over the candidate's budget."""

from __future__ import annotations

import math
from typing import Any

SCORE_MIN, SCORE_MAX = 0.25, 4.0


def envelope(losses: list[float]) -> list[float]:
    """The best loss reached within each budget, made strictly decreasing (a flat stretch would make the
    score jump): a later budget never counts as reaching a loss an earlier one already reached."""
    out: list[float] = []
    for v in losses:
        if out:
            v = min(v, out[-1] - 1e-9 * max(1.0, abs(out[-1])))
        out.append(v)
    return out


def budget_ratio(loss: float, curve: dict[str, Any]) -> float:
    """The AdamW budget needed to reach ``loss`` / N: interpolated in log-budget on the envelope of the tuned
    AdamW curve (measured from N/4 to 4N, so nothing is extrapolated), clipped to [1/4, 4]. Continuous and
    non-increasing in ``loss``."""
    if not math.isfinite(loss):
        return SCORE_MIN
    env = envelope([float(v) for v in curve["best_loss"]])
    n = float(curve["n"])
    logs = [math.log(float(b) / n) for b in curve["budgets"]]
    if loss >= env[0]:
        x = logs[0]
    elif loss <= env[-1]:
        x = logs[-1]
    else:
        i = next(j for j in range(len(env) - 1) if env[j] >= loss >= env[j + 1])
        x = logs[i] + (env[i] - loss) / (env[i] - env[i + 1]) * (logs[i + 1] - logs[i])
    return min(SCORE_MAX, max(SCORE_MIN, math.exp(x)))
