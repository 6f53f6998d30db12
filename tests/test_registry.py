"""The MLflow registry against a real ``mlflow server`` on 127.0.0.1."""

import json
import os
import uuid

import numpy as np
import onnx
import pytest

from kfp_interop.errors import InvalidInputError, RegistryUnavailableError
from kfp_interop.metadata import load_metadata
from kfp_interop.model_registry import load_model, promote, register_model


def test_register_alias_load_and_promote(iris_onnx, mlflow_url):
    import mlflow

    name = f"iris-{uuid.uuid4().hex[:6]}"
    reg = register_model(iris_onnx, tracking_uri=mlflow_url, name=name)
    assert reg["version"] == "1" and reg["model_uri"] == f"models:/{name}@candidate"
    client = mlflow.MlflowClient(tracking_uri=mlflow_url)
    mv = client.get_model_version_by_alias(name, "candidate")
    record = load_metadata(iris_onnx)
    assert mv.tags["kfp_interop.onnx_sha256"] == record.model["onnx_sha256"]
    run = client.get_run(reg["run_id"])
    assert run.data.tags["kfp_interop.task"] == "classification"
    assert run.data.metrics["accuracy"] == pytest.approx(record.training["metrics"]["accuracy"])
    stored = json.loads(open(client.download_artifacts(reg["run_id"],
                                                       "inference_metadata.json")).read())
    assert stored == record.to_dict()
    # the registered MLmodel carries the signature and the key facts: it imports back
    from kfp_interop.metadata.importers import import_metadata
    from kfp_interop.metadata.render import properties

    folder = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/1",
                                                 tracking_uri=mlflow_url)
    imported = import_metadata(os.path.join(folder, "MLmodel"), "mlflow",
                               onnx_model=onnx.load(iris_onnx))
    assert (imported.name, imported.task, imported.class_labels, imported.inputs,
            imported.feature_names) == (name, "classification", record.class_labels,
                                        record.inputs, record.feature_names)
    assert properties(imported) == properties(record)
    model = load_model(reg["model_uri"], tracking_uri=mlflow_url)
    sig = model.metadata.signature
    assert sig.inputs.inputs[0].name == "input" and sig.inputs.inputs[0].shape == (-1, 4)
    out = model.predict({"input": np.array([[5.1, 3.5, 1.4, 0.2], [6.9, 3.1, 5.4, 2.1]],
                                           dtype=np.float32)})
    assert np.asarray(out["label"]).tolist() == [0, 2]
    assert promote(name, tracking_uri=mlflow_url) == "1"
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    again = register_model(iris_onnx, tracking_uri=mlflow_url, name=name)
    assert again["version"] == "2"
    assert client.get_model_version_by_alias(name, "champion").version == "1"


def test_mlflow_down_is_one_clear_error(iris_onnx):
    from services import free_port_block

    url = f"http://127.0.0.1:{free_port_block(1)}"
    with pytest.raises(RegistryUnavailableError, match=f"Cannot reach the MLflow tracking "
                                                       f"server at {url}"):
        register_model(iris_onnx, tracking_uri=url)


def test_bad_alias_is_refused_before_anything_is_written(iris_onnx, mlflow_url):
    with pytest.raises(InvalidInputError, match="not valid in MLflow"):
        register_model(iris_onnx, tracking_uri=mlflow_url, alias="v3")


def test_local_sqlite_default(iris_onnx, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    reg = register_model(iris_onnx, local_dir=str(tmp_path), name="iris-local")
    assert reg["tracking_uri"].startswith("sqlite:///") and (tmp_path / "mlflow.db").exists()
    assert (tmp_path / "mlartifacts").is_dir()
    # what serving the logged model needs, pinned to this environment (stated, not
    # inferred by MLflow's import-tracing subprocess)
    from importlib.metadata import version

    [requirements] = list((tmp_path / "mlartifacts").rglob("requirements.txt"))
    assert requirements.read_text().split() == [
        f"{p}=={version(p)}" for p in ("mlflow", "numpy", "onnx", "onnxruntime")]


def test_a_new_local_store_starts_from_the_empty_store_of_this_mlflow(
        iris_onnx, tmp_path, monkeypatch):
    """A new SQLite store is a copy of an empty one MLflow built once (no 60 migrations
    per run); MLflow opens it as its own: its default experiment and artifacts are the new
    store's, and a later version of the model registers on top. Without a writable cache,
    MLflow builds the store itself."""
    import sqlite3

    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = register_model(iris_onnx, local_dir=str(tmp_path / "a"), name="iris-a")
    [template] = (tmp_path / "cache" / "kfp-interop" / "mlflow").glob("empty-store-*.db")
    assert mlflow.__version__ in template.name
    with sqlite3.connect(template) as db:  # empty: no experiment, not even the default
        assert db.execute("select count(*) from experiments").fetchone() == (0,)
    stamp = template.stat().st_mtime_ns
    second = register_model(iris_onnx, local_dir=str(tmp_path / "b"), name="iris-b")
    again = register_model(iris_onnx, local_dir=str(tmp_path / "b"), name="iris-b")
    assert template.stat().st_mtime_ns == stamp  # built once
    assert (first["version"], second["version"], again["version"]) == ("1", "1", "2")
    with sqlite3.connect(tmp_path / "b" / "mlflow.db") as db:
        revisions = db.execute("select version_num from alembic_version").fetchall()
        locations = [r[0] for r in db.execute("select artifact_location from experiments")]
    with sqlite3.connect(template) as db:
        assert db.execute("select version_num from alembic_version").fetchall() == revisions
    # MLflow made the default experiment on opening the copy, as on a store it built
    assert len(locations) == 2 and not [loc for loc in locations if "cache" in loc]
    assert any(loc.startswith(str(tmp_path / "b" / "mlartifacts")) for loc in locations)
    assert (tmp_path / "b" / "mlartifacts").is_dir()
    # a cache that cannot be written: MLflow builds the store itself, as before
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not-a-folder"))
    third = register_model(iris_onnx, local_dir=str(tmp_path / "c"), name="iris-c")
    assert third["version"] == "1" and (tmp_path / "c" / "mlflow.db").exists()


def test_credentials_in_a_tracking_uri_never_come_back(iris_onnx, mlflow_url):
    """User info in the tracking URI goes to MLflow's own variables; what kfp-interop
    returns and says carries none of it."""
    import os

    from services import free_port_block

    saved = {k: os.environ.pop(k, None) for k in ("MLFLOW_TRACKING_USERNAME",
                                                  "MLFLOW_TRACKING_PASSWORD")}
    try:
        with_secret = mlflow_url.replace("http://", "http://alice:s3cret%2Fpw@")
        reg = register_model(iris_onnx, tracking_uri=with_secret,
                             name=f"iris-{uuid.uuid4().hex[:6]}")
        assert reg["tracking_uri"] == mlflow_url and "s3cret" not in json.dumps(reg)
        assert os.environ["MLFLOW_TRACKING_USERNAME"] == "alice"
        assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "s3cret/pw"
        down = f"http://bob:hunter2@127.0.0.1:{free_port_block(1)}"
        with pytest.raises(RegistryUnavailableError) as info:
            register_model(iris_onnx, tracking_uri=down)
        assert "hunter2" not in str(info.value) and "bob" not in str(info.value)
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None)
            if value is not None:
                os.environ[key] = value


def test_redaction_of_uris_in_text():
    from kfp_interop.errors import InteropError, error_record
    from kfp_interop.redaction import redact, redact_all, split_userinfo

    text = "at http://u:p@h:5000/x and s3://key:secret@bucket/k, not mailto:a@b or a@b"
    assert redact(text) == ("at http://***@h:5000/x and s3://***@bucket/k, not mailto:a@b "
                            "or a@b")
    assert redact_all({"a": ["https://t0ken@host"], "b": 3}) == {"a": ["https://***@host"],
                                                                 "b": 3}
    assert split_userinfo("https://u:p%40ss@h:1/p?q=1") == ("https://h:1/p?q=1", "u", "p@ss")
    assert split_userinfo("sqlite:////tmp/x.db") == ("sqlite:////tmp/x.db", None, None)
    assert "p@ss" not in str(InteropError("failed at https://u:p@ss@h"))
    assert error_record(ValueError("http://u:pw@h"))["message"] == "http://***@h"
