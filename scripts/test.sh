#!/usr/bin/env bash
# The one command that runs every test: installs what is needed (see bootstrap.sh), then lint, type checks, the JS unit tests
# and the whole pytest suite, browser end-to-end tests included (real Chromium, real coturn), and the end-to-end suite
# again on PostgreSQL. Arguments go to the first pytest run only (and skip the PostgreSQL one).
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
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$#" -eq 0 ]; then
  # The whole end-to-end suite once more with every experiment stored on PostgreSQL (a real server the tests start
  # and stop): the storage rules, the export and the dashboard must hold on both engines (tests/e2e/db_under_test.py).
  # Run even when the first run failed, so one test command reports both.
  echo "== pytest tests/e2e on PostgreSQL"
  INTERACTIVE_GYM_TEST_DB=postgresql .venv/bin/python -m pytest tests/e2e || status=$?
fi
exit "$status"
