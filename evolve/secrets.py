"""What counts as a secret: environment variables named like keys, and key-shaped strings.

One definition for both places that need it: the Ray start-up (which hides such variables from
the runtime's processes) and the LLM prompts/archive (which redact their values).
"""

from __future__ import annotations

import os
import re

SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL)", re.I)
# Key-shaped strings (OpenAI/Anthropic sk-..., Google AIza..., AWS AKIA..., bearer tokens).
_KEY_PATTERNS = re.compile(r"(sk-[A-Za-z0-9_\-]{12,}|AIza[0-9A-Za-z_\-]{20,}|AKIA[0-9A-Z]{16}|"
                           r"(?i:bearer)\s+[A-Za-z0-9._\-]{12,})")


def secret_names() -> list[str]:
    return [n for n in os.environ if SECRET_NAME.search(n)]


def secret_values(extra_env_names: list[str] | None = None) -> list[str]:
    """Values of this process's environment that look secret (API keys, tokens, passwords)."""
    names = set(secret_names()) | set(extra_env_names or [])
    return sorted({os.environ[n] for n in names if len(os.environ.get(n, "")) >= 6}, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for s in secrets:
        text = text.replace(s, "[REDACTED]")
    return _KEY_PATTERNS.sub("[REDACTED]", text)
