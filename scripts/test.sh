#!/usr/bin/env bash
# Fresh machine -> the whole test suite (the command CI runs through .ci/run).
# Stage 1: installs the project (.venv), the Triton test environment (.triton-venv) and
# Azurite (.azurite, from npm), starts the servers the tests need on 127.0.0.1 (SeaweedFS
# for S3, the GCS emulator, Azurite for Azure Blob Storage, an MLflow tracking server)
# and runs pytest. Stage 2 (containers): installs a container engine where none
# runs (scripts/containers.sh: podman on Debian/Ubuntu, as root), builds both images
# (scripts/image.sh) and runs the tests marked `containers` (every reference pipeline
# with every task in the image; the ServingRuntime's container). A machine that cannot
# run containers skips stage 2, saying so.
# With arguments, they go to one pytest run (e.g. bash scripts/test.sh tests/test_cli.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh serve,dev,torch,tensorflow,federated,dask
bash tests/triton_server/setup.sh || echo "Triton environment not installed: its tests will skip" >&2
bash tests/azurite/setup.sh || echo "Azurite not installed: the Azure tests will skip (fail under CI)" >&2
state="$(pwd)/.ci-state"
rm -rf "$state"
.venv/bin/python tests/services.py up "$state" > "$state.env"
trap '.venv/bin/python tests/services.py down "$state" || true' EXIT
# shellcheck disable=SC1090
source "$state.env"
export KFP_INTEROP_TEST_S3 KFP_INTEROP_TEST_GCS KFP_INTEROP_TEST_AZURE KFP_INTEROP_TEST_MLFLOW
if [ $# -gt 0 ]; then
  .venv/bin/python -m pytest "$@"  # not exec: the EXIT trap stops the servers
  exit $?
fi
.venv/bin/python -m pytest -m "not containers"
echo "== container stage"
if engine="$(bash scripts/containers.sh)"; then
  eval "$engine"
  start=$SECONDS
  bash scripts/image.sh
  echo "images built in $((SECONDS - start)) s"
  KFP_INTEROP_REQUIRE_CONTAINERS=1 .venv/bin/python -m pytest -m containers
else
  echo "SKIPPED the container stage: this machine cannot run containers (see above)" >&2
fi
