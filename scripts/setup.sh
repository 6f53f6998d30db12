#!/usr/bin/env bash
# Create .venv (Python 3.10+) and install kfp-interop with the pinned versions from
# constraints.txt. Usage: bash scripts/setup.sh [EXTRAS]   (default extras: serve)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-serve}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".[${extras}]"
echo "kfp-interop installed in .venv (extras: ${extras})"
