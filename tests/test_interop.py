"""Models from elsewhere, end to end under kfp.local: your own training component feeding
kfp-interop's components (the Model artifact contract), a table with text columns
through the tabular pipeline on its defaults, served to real clients with BYTES tensors."""

import json
import os
import urllib.request

import numpy as np
import pandas as pd
import pytest
from test_pipeline import alive, run_cli

from kfp_interop.metadata import load_metadata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "own_training", "pipeline.py")


def test_own_training_component_feeds_our_components(tmp_path, mlflow_url):
    import uuid

    out = tmp_path / "out"
    name = f"churn-{uuid.uuid4().hex[:6]}"
    proc = run_cli("run", f"{EXAMPLE}:own_training", "--local", "--output-dir", str(out),
                   "--param", f"tracking_uri={mlflow_url}", "--param", f"model_name={name}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    s = json.loads((out / "summary.json").read_text())
    assert s["status"] == "succeeded" and s["smoke_test"]["passed"]
    assert s["parity"]["passed"] and s["parity"]["label_agreement"] == 1.0
    record = load_metadata(s["onnx_path"])
    assert record.origin["kind"] == "exported" and record.training is None
    assert record.framework["estimator"] == "LogisticRegression"
    assert record.class_labels == ["no", "yes"]
    assert [(i["name"], i["datatype"]) for i in record.inputs] == [
        ("tenure_months", "FP32"), ("monthly_fee", "FP32"), ("support_tickets", "FP32"),
        ("plan", "BYTES"), ("region", "BYTES"), ("channel", "BYTES")]
    assert s["registration"]["version"] == "1" and s["promotion"]["alias"] == "champion"


def test_a_table_with_text_columns_on_the_tabular_defaults(tmp_path):
    """customers.csv (three text columns) through `run tabular` with only target_column
    given, then served: a raw OIP request, tritonclient with binary BYTES, an unseen
    category."""
    import tritonclient.http as httpclient

    out = tmp_path / "out"
    csv = os.path.join(ROOT, "examples", "own_training", "customers.csv")
    proc = run_cli("run", "tabular", "--local", "--output-dir", str(out), "--keep-serving",
                   "--param", f"dataset={csv}", "--param", "target_column=churned",
                   "--param", "register=false")
    s = json.loads((out / "summary.json").read_text())
    try:
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert s["parity"]["passed"] and s["smoke_test"]["passed"]
        assert s["metrics"]["accuracy"] > 0.65
        record = load_metadata(s["onnx_path"])
        assert record.feature_names == ["tenure_months", "monthly_fee", "support_tickets",
                                        "plan", "region", "channel"]
        assert {i["name"]: i["datatype"] for i in record.inputs}["region"] == "BYTES"
        row = {"tenure_months": 3.0, "monthly_fee": 35.0, "support_tickets": 4.0,
               "plan": "basic", "region": "south", "channel": "phone"}
        body = {"inputs": [{"name": k, "shape": [1, 1], "data": [v],
                            "datatype": "BYTES" if isinstance(v, str) else "FP32"}
                           for k, v in row.items()]}
        req = urllib.request.Request(f"{s['endpoint']}/v2/models/{record.name}/infer",
                                     data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            raw = {o["name"]: o["data"] for o in json.loads(r.read())["outputs"]}
        client = httpclient.InferenceServerClient(s["endpoint"][len("http://"):])
        for region in ("south", "antarctica"):  # a category never seen in training
            tensors = []
            for name, value in {**row, "region": region}.items():
                kind = "BYTES" if isinstance(value, str) else "FP32"
                t = httpclient.InferInput(name, [1, 1], kind)
                t.set_data_from_numpy(np.array([[value]], dtype=object if kind == "BYTES"
                                               else np.float32), binary_data=True)
                tensors.append(t)
            result = client.infer(record.name, tensors)
            probabilities = result.as_numpy("probabilities")
            assert probabilities.shape == (1, 2) and abs(probabilities.sum() - 1) < 1e-5
            if region == "south":
                assert result.as_numpy("label").tolist() == raw["label"]
    finally:
        if s.get("deployment"):
            from kfp_interop.deploy import undeploy

            undeploy(s["deployment"])
    assert not alive(s["endpoint"])


def test_a_model_artifact_without_the_contract_says_what_is_missing(tmp_path):
    import skops.io
    from sklearn.linear_model import LogisticRegression

    from kfp_interop.errors import InvalidInputError
    from kfp_interop.steps import export_onnx_step

    X = np.random.default_rng(0).normal(size=(40, 2))
    y = (X[:, 0] > 0).astype(int)
    skops.io.dump(LogisticRegression().fit(X, y), str(tmp_path / "model"))
    pd.DataFrame(X, columns=["a", "b"]).to_csv(tmp_path / "rows.csv", index=False)
    with pytest.raises(InvalidInputError, match=r"lacks \['feature_names', 'class_labels'\]"
                                                ".*docs/model-artifact.md"):
        export_onnx_step(model_dir=str(tmp_path / "model"), test_path=str(tmp_path / "rows.csv"),
                    artifact_metadata={"framework": "sklearn", "task": "classification"},
                    out_dir=str(tmp_path / "out"))
    meta = export_onnx_step(model_dir=str(tmp_path / "model"), test_path=str(tmp_path / "rows.csv"),
                       artifact_metadata={"framework": "sklearn", "task": "classification",
                                          "feature_names": ["a", "b"],
                                          "class_labels": ["neg", "pos"]},
                       out_dir=str(tmp_path / "out"))
    assert meta.parity["passed"] and meta.estimator == "LogisticRegression"
    with pytest.raises(Exception, match=r"lacks the model's feature column\(s\) \['b'\]"):
        pd.DataFrame(X[:, :1], columns=["a"]).to_csv(tmp_path / "short.csv", index=False)
        export_onnx_step(model_dir=str(tmp_path / "model"), test_path=str(tmp_path / "short.csv"),
                    artifact_metadata={"framework": "sklearn", "task": "classification",
                                       "feature_names": ["a", "b"], "class_labels": ["n", "p"]},
                    out_dir=str(tmp_path / "out2"))
