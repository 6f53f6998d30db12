#!/usr/bin/env bash
# The environment tests/triton_server/server.py starts Triton from (default .triton-venv; set
# KFP_INTEROP_TRITON_VENV to put it elsewhere). Triton's Python stub needs the system's
# libpython3.11 (Debian: libpython3.11), installed here when missing and run as root.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${KFP_INTEROP_TRITON_VENV:-.triton-venv}"
python="${PYTHON:-python3}"
if ! ldconfig -p | grep 'libpython3\.11\.so\.1\.0' >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpython3.11 >&2
  else
    echo "tests/triton_server/setup.sh: Triton's Python stub needs libpython3.11 (apt-get install libpython3.11)" >&2
  fi
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet -r tests/triton_server/requirements.txt 2>&1 | grep -v "^WARNING: Location" || true
"$venv/bin/python" -c "import pytriton, numpy, onnxruntime; print('triton environment ready:', '$venv')"
