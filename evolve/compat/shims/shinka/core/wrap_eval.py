"""``run_shinka_eval`` as ShinkaEvolve's evaluate.py scripts call it, written for evolve.

It loads the candidate from ``program_path``, calls its ``experiment_fn_name`` ``num_runs`` times
(keyword arguments from ``get_experiment_kwargs(run)``, else ``seed=run + 1``), checks each result with
``validate_fn`` (-> (ok, message)), aggregates the results with ``aggregate_metrics_fn``, adds timing
and validation counts, and writes ``correct.json`` ({"correct", "error"}) and ``metrics.json`` into
``results_dir``. It returns (metrics, correct, first error). Runs are made one after another (a
``run_workers`` request gives the same results, sequentially) and early stopping is not supported:
every run is made, and the metrics say so.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import pickle
import time
from collections.abc import Callable
from typing import Any

DEFAULT_METRICS_ON_ERROR: dict[str, Any] = {
    "combined_score": 0.0,
    "execution_time_mean": 0.0,
    "execution_time_std": 0.0,
    "num_successful_runs": 0,
    "num_valid_runs": 0,
    "num_invalid_runs": 0,
    "all_validation_errors": [],
}


def _load(program_path: str) -> Any:
    spec = importlib.util.spec_from_file_location("program", program_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {program_path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def run_shinka_eval(
    program_path: str,
    results_dir: str,
    experiment_fn_name: str,
    num_runs: int,
    get_experiment_kwargs: Callable[[int], dict[str, Any]] | None = None,
    aggregate_metrics_fn: Callable[[list[Any]], dict[str, Any]] | None = None,
    validate_fn: Callable[[Any], tuple[bool, str | None]] | None = None,
    plotting_fn: Callable[[Any], list[tuple[Any, str]]] | None = None,
    default_metrics_on_error: dict[str, Any] | None = None,
    early_stop_method: str | None = None,
    early_stop_threshold: float | None = None,
    early_stop_score_fn: Callable[[Any], float] | None = None,
    early_stop_kwargs: dict[str, Any] | None = None,
    run_workers: int = 1,
    max_workers_cap: int | None = None,
    verbose: bool | None = None,
) -> tuple[dict[str, Any], bool, str | None]:
    if run_workers < 1 or (max_workers_cap is not None and max_workers_cap < 1):
        raise ValueError("run_workers and max_workers_cap must be at least 1")
    if early_stop_method not in (None, "none") and early_stop_threshold is None:
        raise ValueError("early_stop_method needs early_stop_threshold")
    correct, first_error = True, None
    times: list[float] = []
    results: list[Any] = []
    valid = invalid = 0
    errors: list[str] = []
    try:
        fn = getattr(_load(program_path), experiment_fn_name)
        for run in range(num_runs):
            kwargs = get_experiment_kwargs(run) if get_experiment_kwargs else {"seed": run + 1}
            t0 = time.perf_counter()
            result = fn(**kwargs)
            times.append(time.perf_counter() - t0)
            results.append(result)
            if validate_fn is not None:
                ok, message = validate_fn(result)
                if ok:
                    valid += 1
                else:
                    invalid += 1
                    correct = False
                    if first_error is None:
                        first_error = f"Validation failed: {message}"
                    if message and message not in errors:
                        errors.append(str(message))
        if aggregate_metrics_fn is not None:
            metrics = dict(aggregate_metrics_fn(results))
        else:
            metrics = {
                "num_successful_runs": len(results),
                "first_run_result_type": str(type(results[0])) if results else "N/A",
                "raw_results_preview": str(results[:2]) if results else "N/A",
            }
        mean = sum(times) / len(times) if times else 0.0
        metrics["execution_time_mean"] = mean
        metrics["execution_time_std"] = math.sqrt(sum((t - mean) ** 2 for t in times) / len(times)) if times else 0.0
        if validate_fn is not None:
            metrics.update({"num_valid_runs": valid, "num_invalid_runs": invalid, "all_validation_errors": errors})
        if early_stop_method not in (None, "none"):
            metrics["early_stop"] = {
                "method": early_stop_method,
                "threshold": early_stop_threshold,
                "triggered": False,
                "runs_completed": len(results),
                "runs_requested": num_runs,
                "reason": "early stopping is not supported under evolve: every run was made",
            }
        score = metrics.get("combined_score")
        if isinstance(score, float) and math.isnan(score):
            correct, first_error = False, "combined_score is NaN"
        elif isinstance(score, float) and math.isinf(score):
            correct, first_error = False, f"combined_score is inf ({score})"
    except Exception as exc:  # noqa: BLE001 - ShinkaEvolve reports any failure as an incorrect program
        defaults = default_metrics_on_error or {}
        metrics = {k: defaults.get(k, v) for k, v in DEFAULT_METRICS_ON_ERROR.items()}
        correct, first_error = False, str(exc)
        print(f"Evaluation error: {exc}")
    os.makedirs(results_dir, exist_ok=True)
    if "extra_data" in metrics:
        with open(os.path.join(results_dir, "extra.pkl"), "wb") as f:
            pickle.dump(metrics.pop("extra_data"), f)
    with open(os.path.join(results_dir, "correct.json"), "w") as f:
        json.dump({"correct": correct, "error": first_error}, f, indent=4)
    with open(os.path.join(results_dir, "metrics.json"), "w") as f:
        json.dump(_plain(metrics), f, indent=4)
    return metrics, correct, first_error
