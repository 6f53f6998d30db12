"""The tabular pipeline end to end through kfp.local, driven as a user drives it: the
``kfp-interop run`` command."""

import json
import subprocess
import sys
import urllib.request

import numpy as np
import pandas as pd
import pytest

from kfp_interop.metadata import load_metadata, verify_onnx_sha256
from kfp_interop.files import sha256_file


def run_cli(*args, timeout=600, env=None):
    import os

    base = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([sys.executable, "-m", "kfp_interop.cli", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env={**base, **(env or {})})


def alive(endpoint):
    try:
        with urllib.request.urlopen(endpoint + "/v2/health/live", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def test_tabular_defaults_succeed_and_stop_the_server(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", "tabular", "--local", "--output-dir", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Executing task" in proc.stdout and "SUCCEEDED" in proc.stdout
    s = json.loads((out / "summary.json").read_text())
    assert s["pipeline"] == "tabular" and s["status"] == "succeeded"
    assert s["onnx_sha256"] == sha256_file(s["onnx_path"])
    record = verify_onnx_sha256(s["onnx_path"])
    assert load_metadata(s["metadata_path"]) == record
    assert s["model_sha256"] == record.model["onnx_sha256"]
    assert s["parity"]["passed"] and s["parity"]["tolerance"] == 1e-4
    assert s["parity"]["max_abs_diff"] <= 1e-4 and s["parity"]["label_agreement"] == 1.0
    assert s["metrics"]["accuracy"] > 0.8 and "roc_auc" in s["metrics"]
    assert s["smoke_test"]["passed"] and s["smoke_test"]["rows"] == 20
    assert s["endpoint"].startswith("http://127.0.0.1:")
    assert set(s["tasks"].values()) == {"succeeded"} and len(s["tasks"]) == 12
    assert not alive(s["endpoint"]), "the local server must be stopped by default"
    assert record.training["dataset"] == "iris" and record.name == "iris-sklearn"
    # embedded defaults: a local model repository and a local MLflow store
    assert s["upload"]["model_uri"] == str(out / "model-repository" / "iris-sklearn")
    assert (out / "model-repository" / "iris-sklearn" / "kfp-interop-manifest.json").is_file()
    assert s["registration"]["version"] == "1" and (out / "mlflow.db").is_file()
    assert s["promotion"] == {"alias": "champion", "version": "1"}


def test_user_csv_with_nans_lightgbm_s3_mlflow_keep_serving(tmp_path, s3_env, mlflow_url):
    """A user's CSV with NaNs, read from an S3 URI, LightGBM, stored on a real S3 server and
    registered on a real MLflow server; credentials only in the environment, never in
    parameters or logs."""
    from kfp_interop.storage import S3Settings

    client = S3Settings.from_env(s3_env).client()
    client.make_bucket("pipeline-models")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    df["outcome"] = np.where(X[:, 0] - X[:, 2] > 0, "yes", "no")
    df.loc[rng.random(300) < 0.1, "b"] = np.nan
    csv = tmp_path / "customers.csv"
    df.to_csv(csv, index=False)
    client.fput_object("pipeline-models", "data/customers.csv", str(csv))
    uri = "s3://pipeline-models/data/customers.csv"
    out = tmp_path / "out"
    proc = run_cli("run", "tabular", "--local", "--output-dir", str(out), "--keep-serving",
                   "--param", f"dataset={uri}", "--param", "target_column=outcome",
                   "--param", "framework=lightgbm", "--param", "estimator=",
                   "--param", "nan_policy=impute", "--param", "model_name=customers",
                   "--param", "storage_uri=s3://pipeline-models/repo",
                   "--param", "tracking_uri=" + mlflow_url.replace("http://",
                                                                   "http://ci:mlflow-pw@"),
                   env=s3_env)
    s = json.loads((out / "summary.json").read_text())
    try:
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert s["status"] == "succeeded" and s["smoke_test"]["passed"]
        assert alive(s["endpoint"]), "--keep-serving leaves the server up"
        record = load_metadata(s["onnx_path"])
        assert record.name == "customers" and record.class_labels == ["no", "yes"]
        assert record.framework["name"] == "lightgbm"
        assert record.training["dataset"] == uri  # the URI, not the step's local copy
        assert s["upload"]["model_uri"] == "s3://pipeline-models/repo/customers"
        assert s["registration"]["tracking_uri"] == mlflow_url
        for secret in (s3_env["AWS_SECRET_ACCESS_KEY"], "mlflow-pw"):
            assert secret not in proc.stdout + proc.stderr
            assert secret not in json.dumps(s)
            assert secret not in open(s["log"]).read()  # kfp.local prints parameters
        # a missing value, as Python's json writes it, is served (LightGBM's native
        # missing-value branch, inside the ONNX graph)
        body = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4],
                                       "data": [1.0, float("nan"), -1.0, 0.0]}]}).encode()
        req = urllib.request.Request(s["endpoint"] + "/v2/models/customers/infer", data=body,
                                     method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            outputs = {o["name"]: o["data"] for o in json.loads(r.read())["outputs"]}
        assert outputs["label"] == [1]  # a - c = 2 > 0 -> "yes"
    finally:
        if s.get("deployment"):
            from kfp_interop.deploy import undeploy

            undeploy(s["deployment"])


def test_parity_failure_fails_the_run_and_writes_no_model(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", "tabular", "--local", "--output-dir", str(out),
                   "--param", "parity_tolerance=0")
    assert proc.returncode == 1
    s = json.loads((out / "summary.json").read_text())
    assert s["status"] == "failed" and s["failed_task"] == "export-onnx"
    assert "ParityError" in s["error"] and "exceeds tolerance 0" in s["error"]
    assert s["onnx_path"] is None and not (out / "model.onnx").exists()
    assert s["smoke_test"]["passed"] is False and s["endpoint"] is None
    assert "FAILED" in proc.stdout


def test_bad_dataset_fails_the_first_task(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", "tabular", "--local", "--output-dir", str(out),
                   "--param", "dataset=iris.csv")
    assert proc.returncode == 1
    s = json.loads((out / "summary.json").read_text())
    assert s["failed_task"] == "fingerprint-data"
    assert "UnknownDatasetError" in s["error"] and "iris.csv" in s["error"]


def test_on_a_cluster_a_run_stops_first_or_runs_to_the_end(tmp_path):
    """In a pod (KUBERNETES_SERVICE_HOST set, as the kubelet does): register without an
    MLflow server stops in the first task, naming the parameters; on the cluster
    profile's defaults (register=false) the run goes to its end, the local target
    serving inside the smoke-test task (a server the deploy task started would die with
    its pod)."""
    pod = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "MLFLOW_TRACKING_URI": ""}
    out = tmp_path / "stop"
    proc = run_cli("run", "tabular", "--local", "--profile", "cluster", "--output-dir", str(out),
                   "--param", "register=true", env=pod)
    assert proc.returncode == 1
    s = json.loads((out / "summary.json").read_text())
    assert s["failed_task"] == "check-settings"
    assert "register=true needs an MLflow server: set tracking_uri" in s["error"]
    assert not (out / "model.onnx").exists()
    out = tmp_path / "end"
    proc = run_cli("run", "tabular", "--local", "--profile", "cluster", "--output-dir",
                   str(out), env=pod)
    assert proc.returncode == 0, proc.stdout[-3000:]
    s = json.loads((out / "summary.json").read_text())
    assert s["status"] == "succeeded" and s["smoke_test"]["passed"]
    assert s["smoke_test"]["served"] == "in-task" and s["deployment"]["endpoint"] is None


def test_kserve_dry_run_needs_no_cluster_and_skips_side_effects(tmp_path, monkeypatch):
    import yaml

    out = tmp_path / "out"
    proc = run_cli("run", "tabular", "--local", "--output-dir", str(out),
                   "--param", "deploy_target=kserve", "--param", "dry_run=true",
                   "--param", "register=false", "--param", "storage_uri=s3://models/repo",
                   "--param", "canary_percent=10", "--param",
                   'deploy_options={"replicas": 2, "service_account": "models"}',
                   env={"KUBECONFIG": str(tmp_path / "none")})
    assert proc.returncode == 0, proc.stdout[-3000:]
    s = json.loads((out / "summary.json").read_text())
    manifest = yaml.safe_load(open(s["manifest_path"]))
    assert manifest["kind"] == "InferenceService"
    # the target's own options, from the pipeline's deploy_options
    assert manifest["spec"]["predictor"]["minReplicas"] == 2
    assert manifest["spec"]["predictor"]["serviceAccountName"] == "models"
    assert manifest["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert manifest["spec"]["predictor"]["model"]["storageUri"] == "s3://models/repo"
    assert s["smoke_test"]["skipped"] == "dry run" and s["upload"]["dry_run"] is True
    assert "kind: InferenceService" in open(s["log"]).read()


def test_deep_pipeline_torch_cnn(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", "deep", "--local", "--output-dir", str(out), "--param", "epochs=5",
                   "--param", "register=false")
    assert proc.returncode == 0, proc.stdout[-3000:]
    s = json.loads((out / "summary.json").read_text())
    assert s["status"] == "succeeded" and s["metrics"]["accuracy"] > 0.9
    assert s["parity"]["passed"] and s["smoke_test"]["passed"]
    record = load_metadata(s["onnx_path"])
    assert record.framework["name"] == "torch" and record.framework["estimator"] == "CNN"
    assert record.inputs == [{"name": "input", "datatype": "FP32", "shape": [-1, 64]}]


def test_transfer_learning_pipeline_reports_both_accuracies(tmp_path):
    """On its defaults (only registering off) the pipeline shows what transfer is for:
    the fine-tuned CNN beats the same CNN from scratch on the noisy target (seed 42:
    0.862 vs 0.693; benchmarks/transfer.py has the spread over seeds and k)."""
    out = tmp_path / "out"
    proc = run_cli("run", "transfer-learning", "--local", "--output-dir", str(out),
                   "--param", "register=false")
    assert proc.returncode == 0, proc.stdout[-3000:]
    s = json.loads((out / "summary.json").read_text())
    m = s["metrics"]
    assert 0 < m["target_accuracy"] <= 1 and 0 < m["scratch_accuracy"] <= 1
    assert m["transfer_gain"] == m["target_accuracy"] - m["scratch_accuracy"]
    assert m["transfer_gain"] > 0.05
    record = load_metadata(s["onnx_path"])
    digits = [str(i) for i in range(10)]  # the default: the same classes, a noisy target
    assert record.class_labels == digits
    assert record.lineage["method"] == "fine-tune"
    assert record.lineage["source_task"]["classes"] == digits
    assert s["smoke_test"]["passed"]


@pytest.mark.parametrize("kind", ["torch", "keras"])
def test_transfer_learning_from_a_backbone_you_bring(tmp_path, kind):
    """Compiled with backbone=import, the run fine-tunes the file at base_model_uri
    (through dsl.importer) instead of pretraining: a PyTorch state dict with its class,
    or a Keras file; the served model's record names the file by sha256."""
    from kfp_interop.files import sha256_file

    if kind == "torch":
        import torch

        from kfp_interop.frameworks.torch import TorchSpec, build_torch_model

        torch.manual_seed(3)
        weights = tmp_path / "backbone.pt"
        torch.save(build_torch_model(TorchSpec("mlp", 64, 10)).state_dict(), weights)
        given = ["--param", "base_architecture=mlp"]
    else:
        from kfp_interop.frameworks.keras import keras_backend

        keras = keras_backend("torch")
        keras.utils.set_random_seed(3)
        weights = tmp_path / "backbone.keras"
        keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")]).save(weights)
        given = []
    out = tmp_path / "out"
    proc = run_cli("run", "transfer-learning", "--local", "--output-dir", str(out),
                   "--param", "backbone=import", "--param", f"base_model_uri={weights}",
                   *given, "--param", "architecture=mlp",
                   "--param", "finetune_epochs=5", "--param", "unfreeze_epochs=2",
                   "--param", "scratch_epochs=5", "--param", "register=false")
    assert proc.returncode == 0, proc.stdout[-3000:]
    s = json.loads((out / "summary.json").read_text())
    assert "train-deep" in s["tasks"] and "import-backbone" in s["tasks"]
    assert not any(t.startswith("train-deep-") for t in s["tasks"])  # no pretraining
    assert s["smoke_test"]["passed"] and s["parity"]["passed"]
    record = load_metadata(s["onnx_path"])
    assert record.lineage["base_model_sha256"] == sha256_file(str(weights))
    assert record.lineage["base_framework"] == kind
    assert record.lineage["source_task"] == {"dataset": weights.name}


def test_warm_start_pipeline_continues_the_base_booster(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", "warm-start", "--local", "--output-dir", str(out),
                   "--param", "register=false", "--param", "added_estimators=20")
    assert proc.returncode == 0, proc.stdout[-3000:]
    s = json.loads((out / "summary.json").read_text())
    m = s["metrics"]
    assert m["transfer_gain"] == m["target_accuracy"] - m["scratch_accuracy"]
    record = load_metadata(s["onnx_path"])
    assert record.lineage["method"] == "warm-start"
    assert record.lineage["source_task"]["trees"] == 50
    assert record.training["hyperparameters"]["warm_start_estimators"] == 20
    assert s["parity"]["passed"] and s["smoke_test"]["passed"]
