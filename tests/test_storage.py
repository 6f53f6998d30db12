"""Object storage against a real S3 server (SeaweedFS on 127.0.0.1) and local folders."""

import os
import threading
import uuid

import pytest
from services import Weed

from kfp_interop.errors import (InvalidInputError, StorageAuthError, StorageError,
                                StorageIntegrityError, StorageUnavailableError)
from kfp_interop.metadata import load_metadata
from kfp_interop.storage import S3Settings, download, parse_uri, upload, upload_tree


@pytest.fixture
def settings(s3_env):
    return S3Settings.from_env(s3_env)


@pytest.fixture
def bucket(settings):
    name = f"models-{uuid.uuid4().hex[:8]}"
    settings.client().make_bucket(name)
    return name


def test_settings_from_env_hide_the_secret(s3_env):
    s = S3Settings.from_env(s3_env)
    assert s.secure is False and s.endpoint.startswith("127.0.0.1:")
    assert s3_env["AWS_SECRET_ACCESS_KEY"] not in repr(s)
    with pytest.raises(StorageError, match="No S3 endpoint configured"):
        S3Settings.from_env({})


def test_parse_uri():
    assert parse_uri("s3://b/p/q/") == ("s3", "b", "p/q")
    assert parse_uri("s3://b") == ("s3", "b", "")
    with pytest.raises(InvalidInputError, match="names no bucket"):
        parse_uri("s3:///x")
    with pytest.raises(InvalidInputError, match="the storage schemes are az://, gs://, "
                                                "http://, https://, pvc://, s3://"):
        parse_uri("ftp://b/p")


def test_triton_layout_upload_download_and_idempotency(iris_onnx, settings, bucket, tmp_path):
    uri = f"s3://{bucket}/repo"
    result = upload(iris_onnx, uri, layout="triton", settings=settings)
    assert result["model_uri"] == f"{uri}/iris"
    assert set(result["objects"]) == {"iris/config.pbtxt", "iris/1/model.onnx",
                                      "iris/model.metadata.json"}
    assert sorted(result["uploaded"]) == sorted(result["objects"]) and not result["skipped"]
    client = settings.client()
    stat = client.stat_object(bucket, "repo/iris/1/model.onnx")
    assert {k.lower(): v for k, v in stat.metadata.items()}["x-amz-meta-sha256"] == \
        result["objects"]["iris/1/model.onnx"]
    config = client.get_object(bucket, "repo/iris/config.pbtxt").read().decode()
    assert 'name: "iris"' in config and 'platform: "onnxruntime_onnx"' in config
    again = upload(iris_onnx, uri, layout="triton", settings=settings)
    assert again["uploaded"] == [] and sorted(again["skipped"]) == sorted(result["objects"])
    got = download(result["model_uri"], str(tmp_path / "dl"), settings=settings)
    assert load_metadata(str(tmp_path / "dl" / "1" / "model.onnx")) == load_metadata(iris_onnx)
    assert set(got["objects"]) == set(result["objects"])


def test_serving_name_renames_the_triton_folder(iris_onnx, settings, bucket):
    result = upload(iris_onnx, f"s3://{bucket}/repo", name="iris-prod", settings=settings)
    assert "iris-prod/config.pbtxt" in result["objects"]
    cfg = settings.client().get_object(bucket, "repo/iris-prod/config.pbtxt").read().decode()
    assert 'name: "iris-prod"' in cfg


def test_mlserver_layout_is_an_mlflow_model_with_settings(iris_onnx, settings, bucket,
                                                          tmp_path):
    import json

    import mlflow.pyfunc
    import numpy as np

    result = upload(iris_onnx, f"s3://{bucket}/mls", layout="mlserver", settings=settings)
    assert {"iris/model-settings.json", "iris/MLmodel", "iris/model.onnx"} <= set(
        result["objects"])
    download(result["model_uri"], str(tmp_path / "m"), settings=settings)
    ms = json.load(open(tmp_path / "m" / "model-settings.json"))
    assert ms["implementation"] == "mlserver_mlflow.MLflowRuntime" and ms["name"] == "iris"
    model = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    out = model.predict({"input": np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)})
    assert int(np.asarray(out["label"])[0]) == 0


def test_local_folder_target(iris_onnx, tmp_path):
    result = upload(iris_onnx, str(tmp_path / "repo"), layout="triton")
    assert (tmp_path / "repo" / "iris" / "1" / "model.onnx").is_file()
    assert (tmp_path / "repo" / "iris" / "kfp-interop-manifest.json").is_file()
    assert upload(iris_onnx, str(tmp_path / "repo"))["uploaded"] == []
    download(result["model_uri"], str(tmp_path / "dl"))
    (tmp_path / "repo" / "iris" / "1" / "model.onnx").write_bytes(b"corrupt")
    with pytest.raises(StorageIntegrityError, match="corrupt"):
        download(result["model_uri"], str(tmp_path / "dl2"))


def test_wrong_credentials_are_refused_without_leaking(iris_onnx, s3_env, bucket):
    bad = S3Settings.from_env({**s3_env, "AWS_SECRET_ACCESS_KEY": "not-the-secret"})
    with pytest.raises(StorageAuthError, match="refused the credentials") as info:
        upload(iris_onnx, f"s3://{bucket}/x", settings=bad)
    assert "not-the-secret" not in str(info.value)
    unknown = S3Settings.from_env({**s3_env, "AWS_ACCESS_KEY_ID": "nobody"})
    with pytest.raises(StorageAuthError, match="refused the credentials"):
        upload(iris_onnx, f"s3://{bucket}/x", settings=unknown)


def test_missing_bucket_is_refused_unless_asked(iris_onnx, settings):
    name = f"absent-{uuid.uuid4().hex[:8]}"
    with pytest.raises(StorageError, match=f"Bucket '{name}' does not exist.*create_bucket"):
        upload(iris_onnx, f"s3://{name}/x", settings=settings)
    assert not settings.client().bucket_exists(name)
    upload(iris_onnx, f"s3://{name}/x", settings=settings, create_bucket=True)
    assert settings.client().bucket_exists(name)


def test_unreachable_endpoint(iris_onnx, s3_env):
    from services import free_port_block

    dead = S3Settings.from_env({**s3_env, "S3_ENDPOINT": f"http://127.0.0.1:{free_port_block(1)}"})
    with pytest.raises(StorageUnavailableError, match="Cannot reach S3"):
        upload(iris_onnx, "s3://models/x", settings=dead)


def test_download_refuses_an_incomplete_upload(settings, bucket, tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 10)
    settings.client().fput_object(bucket, "repo/m/1/model.onnx", str(tmp_path / "f"))
    with pytest.raises(StorageIntegrityError, match="incomplete"):
        download(f"s3://{bucket}/repo/m", str(tmp_path / "dl"), settings=settings)


def test_server_killed_during_upload_leaves_nothing_complete(tmp_path):
    """Kill the S3 server mid-upload: a typed error, no manifest, no torn object; the
    same upload then completes once the server is back."""
    weed = Weed(str(tmp_path / "weed")).start()
    try:
        settings = S3Settings.from_env(weed.env())
        settings.client().make_bucket("models")
        big = tmp_path / "model.onnx"
        big.write_bytes(os.urandom(24 * 1024 * 1024))  # multipart: several 5 MiB parts
        small = tmp_path / "config.pbtxt"
        small.write_text("name: \"m\"")
        files = {"m/config.pbtxt": str(small), "m/1/model.onnx": str(big)}

        class KillAfterFirstPart:
            def __init__(self):
                self.seen = 0

            def set_meta(self, object_name, total_length):
                pass

            def update(self, size):
                self.seen += size
                if self.seen >= 5 * 1024 * 1024 and weed.proc.poll() is None:
                    threading.Thread(target=weed.kill).start()

        quick = S3Settings(**{**settings.__dict__})
        with pytest.raises(StorageError) as info:
            upload_tree(files, "s3://models/repo", settings=quick, manifest_dir="m",
                        progress=KillAfterFirstPart())
        assert isinstance(info.value, (StorageUnavailableError, StorageError))
        assert "incomplete" in str(info.value) or "S3" in str(info.value)
        weed.proc.wait(10)
        weed.start()  # same data folder
        client = settings.client()
        names = {o.object_name for o in client.list_objects("models", prefix="repo/",
                                                            recursive=True)}
        assert "repo/m/kfp-interop-manifest.json" not in names
        if "repo/m/1/model.onnx" in names:  # if it exists at all, it is whole
            stat = client.stat_object("models", "repo/m/1/model.onnx")
            assert stat.size == big.stat().st_size
        with pytest.raises(StorageIntegrityError, match="incomplete"):
            download("s3://models/repo/m", str(tmp_path / "dl"), settings=settings)
        done = upload_tree(files, "s3://models/repo", settings=settings, manifest_dir="m")
        assert "m/1/model.onnx" in done["uploaded"] + done["skipped"]
        got = download("s3://models/repo/m", str(tmp_path / "dl"), settings=settings)
        assert set(got["objects"]) == set(files)
    finally:
        weed.stop()


def test_a_data_set_at_an_s3_uri_is_read_fingerprinted_and_named(settings, bucket, s3_env,
                                                                   tmp_path, monkeypatch):
    """load_data / fingerprint_data / federated_split take s3://bucket/key.csv: the object
    is fetched for the step only, its fingerprint is its bytes' sha256, the splits name
    the URI (not the temporary copy), and a changed object is refused; bad URIs and a
    missing object are typed errors naming the URI."""
    import pandas as pd

    from kfp_interop.data import read_split_metadata, source_fingerprint
    from kfp_interop.errors import DatasetError
    from kfp_interop.steps import federated_split_step, fingerprint_data_step, load_data_step

    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    rows = tmp_path / "rows.csv"
    pd.DataFrame({"a": [float(i) for i in range(40)], "b": [i % 7 for i in range(40)],
                  "y": ["no", "yes"] * 20}).to_csv(rows, index=False)
    settings.client().fput_object(bucket, "data/rows.csv", str(rows))
    uri = f"s3://{bucket}/data/rows.csv"
    fp = fingerprint_data_step(dataset=uri)
    assert fp == source_fingerprint(str(rows))
    meta = load_data_step(dataset=uri, target_column="y", source_fingerprint=fp,
                          train_path=str(tmp_path / "train"), test_path=str(tmp_path / "test"))
    assert meta["source"] == uri and meta["class_labels"] == ["no", "yes"]
    assert read_split_metadata(str(tmp_path / "train"))["source"] == uri
    out = federated_split_step(dataset=uri, target_column="y", clients=2, partition="iid",
                               source_fingerprint=fp, partitions_dir=str(tmp_path / "p"),
                               train_path=str(tmp_path / "ftr"), test_path=str(tmp_path / "fte"))
    assert sum(out["rows"]) == 30
    # the object changed after the fingerprint: refused, nothing written
    pd.DataFrame({"a": [1.0] * 40, "b": [1] * 40, "y": ["no", "yes"] * 20}).to_csv(
        rows, index=False)
    settings.client().fput_object(bucket, "data/rows.csv", str(rows))
    with pytest.raises(DatasetError, match="changed after it was fingerprinted"):
        load_data_step(dataset=uri, target_column="y", source_fingerprint=fp,
                       train_path=str(tmp_path / "t2"), test_path=str(tmp_path / "s2"))
    assert not (tmp_path / "t2").exists()
    with pytest.raises(StorageError, match=f"NoSuchKey.*s3://{bucket}/data/missing.csv"):
        fingerprint_data_step(dataset=f"s3://{bucket}/data/missing.csv")
    for bad in (f"s3://{bucket}/rows.txt", "s3://rows.csv",
                f"s3://{bucket}/../rows.csv", "ftp://host/rows.csv"):
        with pytest.raises(InvalidInputError):
            fingerprint_data_step(dataset=bad)
    # a prefix is a table for engine=dask (fingerprinted by its listing); the local
    # engine reads one object and says so
    assert fingerprint_data_step(dataset=f"s3://{bucket}/data/").startswith("listing")
    with pytest.raises(InvalidInputError, match="one .csv or .parquet object"):
        load_data_step(dataset=f"s3://{bucket}/data/", target_column="y",
                       train_path=str(tmp_path / "t3"), test_path=str(tmp_path / "s3"))
