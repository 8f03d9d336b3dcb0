"""What counts as a secret, and the one redactor that removes secrets from text before it is stored.

Secrets are the values of environment variables named like keys (``*KEY*``, ``*TOKEN*``...) and
key-shaped strings: provider keys (``sk-``, Google's ``AIza``, Hugging Face ``hf_``, GitHub ``ghp_`` and
``github_pat_``, Slack ``xox*``, AWS access keys), ``key=...`` style query parameters (litellm's Gemini
errors carry the URL), bearer tokens and PEM private keys. One definition for every place that needs
it: the Ray start-up (which hides such variables from the runtime's processes), the LLM prompts, and
the archive (:class:`evolve.store.LineageStore` redacts everything a candidate or a model wrote on
its way in).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL)", re.I)
_KEY_PATTERNS = re.compile(
    r"(sk-[A-Za-z0-9_\-]{12,}"
    r"|AIza[0-9A-Za-z_\-]{20,}"
    r"|hf_[A-Za-z0-9]{20,}"
    r"|(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
    r"|xox[abeoprs]-[A-Za-z0-9\-]{10,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|(?i:bearer)\s+[A-Za-z0-9._\-~+/]{12,}=*"
    r"|-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$))"
)
# key=..., api_key=..., access_token=... in URLs and error texts (the name is kept, the value goes)
_QUERY = re.compile(r"(?i)\b((?:api[_-]?)?key|token|access[_-]?token|secret|password|sig|signature)=([^&\s\"'<>]{6,})")
REDACTED = "[REDACTED]"


def secret_names() -> list[str]:
    return [n for n in os.environ if SECRET_NAME.search(n)]


def secret_values(extra_env_names: list[str] | None = None) -> list[str]:
    """Values of this process's environment that look secret (API keys, tokens, passwords)."""
    names = set(secret_names()) | set(extra_env_names or [])
    return sorted({os.environ[n] for n in names if len(os.environ.get(n, "")) >= 6}, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for s in secrets:
        text = text.replace(s, REDACTED)
    text = _QUERY.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    return _KEY_PATTERNS.sub(REDACTED, text)


class Redactor:
    """Redacts known secret values and key-shaped strings from text, and from every string in a value."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values: list[str] = []
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        self.values = sorted({*self.values, *(v for v in values if v and len(v) >= 6)}, key=len, reverse=True)

    def text(self, value: str | None) -> str | None:
        return None if value is None else redact(value, self.values)

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return redact(value, self.values)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        return value
