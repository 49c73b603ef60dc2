#!/usr/bin/env bash
# The one command that runs the demo experiment: installs what is needed, then serves examples/demo on
# http://127.0.0.1:8000 with its data in ./data/demo.sqlite. Extra arguments go to `interactive-gym run`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/interactive-gym run examples/demo/experiment.py "$@"
