#!/usr/bin/env bash
# Fresh machine -> the whole test suite (the command CI runs through .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh serve,dev
exec .venv/bin/python -m pytest "$@"
