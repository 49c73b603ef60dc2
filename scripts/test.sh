#!/usr/bin/env bash
# The one command that runs every test: installs what is needed (see bootstrap.sh), then lint, type checks, the JS unit tests
# and the whole pytest suite, browser end-to-end tests included (real Chromium, real coturn).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --system
echo "== ruff"
.venv/bin/ruff check interactive_gym tests benchmarks examples
echo "== mypy"
.venv/bin/mypy interactive_gym
echo "== node --test"
if ls tests/js/*.test.mjs >/dev/null 2>&1; then node --test tests/js/; fi
echo "== pytest"
exec .venv/bin/python -m pytest "$@"
