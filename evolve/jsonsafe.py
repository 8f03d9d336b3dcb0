"""Safe output: standard JSON from values that may hold inf or nan (a diverged run's loss), and text a
candidate or a model wrote made safe for a terminal.

JSON has neither: Python writes ``Infinity``/``NaN``, which SQLite's JSON functions, browsers and jq refuse.
The archive, every ``--json`` output and the web view write them as null instead, as pydantic's JSON mode
and a browser's ``JSON.stringify`` do.
"""

from __future__ import annotations

import json
import math
import re
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


# C0 controls but tab and newline, DEL and C1 controls: escape sequences (OSC 52 writes the clipboard,
# CSI 2J clears the screen), carriage returns that overwrite a line, bells.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` without the control characters a terminal would act on (each shown as U+FFFD)."""
    return _CONTROL.sub("\ufffd", text)
