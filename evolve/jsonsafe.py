"""Standard JSON from Python values that may hold inf or nan (a diverged run's loss).

JSON has neither: Python writes ``Infinity``/``NaN``, which SQLite's JSON functions, browsers and jq refuse.
The archive, every ``--json`` output and the web view write them as null instead, as pydantic's JSON mode
and a browser's ``JSON.stringify`` do.
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (dicts, lists and tuples walked)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``value`` (non-finite numbers as null; anything else unknown as its str)."""
    return json.dumps(finite(value), default=str, allow_nan=False, **kwargs)
