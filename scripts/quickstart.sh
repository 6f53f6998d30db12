#!/usr/bin/env bash
# Fresh machine -> the tabular reference pipeline, run locally on its defaults:
# trains a model, exports it to ONNX with the parity gate, attaches the metadata record,
# serves it on a local Open Inference Protocol endpoint and smoke-tests it.
# Results: kfp-interop-output/summary.json, model.onnx, model.metadata.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh serve,mlflow
exec .venv/bin/kfp-interop run tabular --local "$@"
