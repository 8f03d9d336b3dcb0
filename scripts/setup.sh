#!/usr/bin/env bash
# Sets up everything evolve needs on a fresh machine (Python 3.11, no GPU): a virtual environment
# in .venv with the package and its test tools, and (as root) bubblewrap for the sandbox and chromium
# for the web-view tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# torch is pinned to 2.13.0 (a CPU wheel); pip takes it from a local wheel where one is provided.
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev,llm]' 2> >(grep -v "^WARNING: Location" >&2)
# Debian packages: bubblewrap isolates candidates; chromium is the browser the web-view tests drive.
missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}") >/dev/null 2>&1 \
      || echo "setup: could not install ${missing[*]} (without bubblewrap a run refuses to start unless" \
              "evaluator.isolation: none says so; without chromium the web-view tests are skipped)" >&2
  else
    echo "setup: missing ${missing[*]}; install them for candidate isolation (bubblewrap: without it a run" \
         "refuses to start) and the web-view tests (chromium)" >&2
  fi
fi
echo "setup: ok ($(.venv/bin/python --version))"
