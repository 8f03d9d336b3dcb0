#!/usr/bin/env bash
# Sets up everything evolve needs on a fresh machine (Python 3.11, no GPU): a virtual environment
# in .venv with the package and its test tools, and bubblewrap for the sandbox when we are root.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# torch is pinned to 2.13.0 (a CPU wheel); pip takes it from a local wheel where one is provided.
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev,llm]' 2> >(grep -v "^WARNING: Location" >&2)
if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq bubblewrap) >/dev/null 2>&1 \
      || echo "setup: could not install bubblewrap; candidates will run without network/file-system isolation" >&2
  else
    echo "setup: bubblewrap (bwrap) is missing; install it for network/file-system isolation of candidates" >&2
  fi
fi
echo "setup: ok ($(.venv/bin/python --version))"
