"""Byte-identical reruns: the same inputs and seed give the same model files when
training runs again from scratch in a new process, for every framework: the native
file, the exported ONNX graph and the final ONNX file with its record embedded (which
holds no run id and no time: those live in KFP's run, not in the model)."""

import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import hashlib, json, os, sys
from kfp_interop.steps import (attach_metadata_step, export_onnx_step, load_data_step,
                               train_deep_step, train_step)

out, framework, dataset, estimator = sys.argv[1:5]
train, test = os.path.join(out, "train.parquet"), os.path.join(out, "test.parquet")
load_data_step(dataset=dataset, train_path=train, test_path=test)
if framework in ("torch", "keras"):
    meta, _ = train_deep_step(train_path=train, test_path=test, framework=framework,
                              architecture=estimator, epochs=3,
                              model_dir=os.path.join(out, "native"))
else:
    meta, _ = train_step(train_path=train, test_path=test, framework=framework,
                         estimator=estimator, model_dir=os.path.join(out, "native"))
export_onnx_step(model_dir=os.path.join(out, "native"), test_path=test,
            out_dir=os.path.join(out, "onnx"))
attach_metadata_step(model_dir=os.path.join(out, "onnx"), out_dir=os.path.join(out, "final"))


def sha(*parts):
    with open(os.path.join(out, *parts), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


print(json.dumps({"native": meta.native_sha256, "onnx": sha("onnx", "model.onnx"),
                  "final": sha("final", "model.onnx"),
                  "record": sha("final", "model.metadata.json"),
                  "metrics": meta.metrics}))
"""

CASES = [("sklearn", "breast_cancer", "random_forest"),
         ("xgboost", "breast_cancer", "xgboost"),
         ("lightgbm", "iris", "lightgbm"),
         ("torch", "digits", "mlp"),
         ("torch", "digits", "cnn"),
         ("keras", "digits", "mlp")]


@pytest.mark.parametrize("framework,dataset,estimator", CASES)
def test_two_runs_from_scratch_give_the_same_files(framework, dataset, estimator, tmp_path):
    runs = [subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path / str(i)), framework,
                              dataset, estimator], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "KERAS_BACKEND": "torch"})
            for i in (1, 2)]
    results = []
    for run in runs:
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    first, second = results
    assert first == second, f"{framework}/{estimator}: {first} != {second}"
