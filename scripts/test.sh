#!/usr/bin/env bash
# Fresh machine -> the whole test suite (the command CI runs through .ci/run).
# Starts the servers the tests need on 127.0.0.1 (SeaweedFS for S3, an MLflow tracking
# server), runs pytest, and stops them again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh serve,dev,torch,tensorflow,federated
state="$(pwd)/.ci-state"
rm -rf "$state"
.venv/bin/python tests/services.py up "$state" > "$state.env"
trap '.venv/bin/python tests/services.py down "$state" || true' EXIT
# shellcheck disable=SC1090
source "$state.env"
export KFP_INTEROP_TEST_S3 KFP_INTEROP_TEST_MLFLOW
.venv/bin/python -m pytest "$@"
