"""Every object-storage scheme through the same upload/download flow, against real
servers on 127.0.0.1: S3 (SeaweedFS), Google Cloud Storage (gcp-storage-emulator) and
Azure Blob Storage (Azurite, reached through the cloud URI form
https://devstoreaccount1.blob.core.windows.net/... by its connection string). The
S3-only details (multipart, SeaweedFS identities) stay in tests/test_storage.py."""

import dataclasses
import json
import os
import threading
import uuid

import pytest

from kfp_interop.errors import (InvalidInputError, StorageAuthError, StorageError,
                                StorageIntegrityError, StorageUnavailableError)
from kfp_interop.metadata import load_metadata
from kfp_interop.storage import download, open_store, parse_uri, upload, upload_tree

AZURE_ACCOUNT = "devstoreaccount1"


@dataclasses.dataclass
class Backend:
    scheme: str
    env: dict

    def uri(self, bucket: str, prefix: str = "") -> str:
        base = (f"https://{AZURE_ACCOUNT}.blob.core.windows.net/{bucket}"
                if self.scheme == "az" else f"{self.scheme}://{bucket}")
        return f"{base}/{prefix}".rstrip("/")

    def new_bucket(self) -> str:
        name = f"models-{uuid.uuid4().hex[:8]}"
        open_store(self.uri(name)).prepare(create_bucket=True)
        return name


@pytest.fixture(params=["s3", "gs", "az"])
def backend(request, monkeypatch):
    env = request.getfixturevalue({"s3": "s3_env", "gs": "gcs_env",
                                   "az": "azure_env"}[request.param])
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Backend(request.param, dict(env))


def test_uris_of_each_scheme_parse_and_bad_ones_are_named():
    assert parse_uri("gs://b/p/q/") == ("gs", "b", "p/q")
    assert parse_uri("https://acct01.blob.core.windows.net/models/repo/") == (
        "az", "acct01/models", "repo")
    assert parse_uri("az://acct01/models") == ("az", "acct01/models", "")
    for bad, message in (("gs:///x", "names no bucket"),
                         ("https://acct01.blob.core.windows.net/", "names no valid container"),
                         ("https://acct01.blob.core.windows.net/Bad_Name/x", "valid container"),
                         ("https://acct01.blob.core.windows.net/models/x?sv=2024&sig=abc",
                          "AZURE_STORAGE_SAS_TOKEN"),
                         ("ftp://host/x",
                          "the storage schemes are az://, gs://, http://, https://, "
                          "pvc://, s3://")):
        with pytest.raises(InvalidInputError, match=message) as info:
            parse_uri(bad)
        assert "sig=abc" not in str(info.value)


def test_upload_download_and_idempotency_on_every_scheme(iris_onnx, backend, tmp_path):
    bucket = backend.new_bucket()
    uri = backend.uri(bucket, "repo")
    result = upload(iris_onnx, uri, layout="triton")
    assert result["model_uri"] == f"{uri}/iris"
    assert set(result["objects"]) == {"iris/config.pbtxt", "iris/1/model.onnx",
                                      "iris/model.metadata.json"}
    store = open_store(uri)
    assert store.stored_sha256("iris/1/model.onnx") == result["objects"]["iris/1/model.onnx"]
    assert store.list_keys("iris") == sorted(["iris/config.pbtxt", "iris/1/model.onnx",
                                              "iris/model.metadata.json",
                                              "iris/kfp-interop-manifest.json"])
    assert 'name: "iris"' in store.read_bytes("iris/config.pbtxt").decode()
    again = upload(iris_onnx, uri, layout="triton")
    assert again["uploaded"] == [] and sorted(again["skipped"]) == sorted(result["objects"])
    got = download(result["model_uri"], str(tmp_path / "dl"))
    assert load_metadata(str(tmp_path / "dl" / "1" / "model.onnx")) == load_metadata(iris_onnx)
    assert set(got["objects"]) == set(result["objects"])
    # a corrupt object is caught by its sha256, nothing is left under the destination
    store.put_bytes("iris/1/model.onnx", b"corrupt", sha256="0" * 64)
    with pytest.raises(StorageIntegrityError, match="corrupt"):
        download(result["model_uri"], str(tmp_path / "dl2"))
    assert not (tmp_path / "dl2" / "1" / "model.onnx").exists()


def test_missing_bucket_is_refused_unless_asked(iris_onnx, backend):
    name = f"absent-{uuid.uuid4().hex[:8]}"
    what = "Container" if backend.scheme == "az" else "Bucket"
    with pytest.raises(StorageError, match=f"{what} '{name}' does not exist.*create_bucket"):
        upload(iris_onnx, backend.uri(name, "x"))
    upload(iris_onnx, backend.uri(name, "x"), create_bucket=True)
    assert open_store(backend.uri(name, "x")).list_keys("iris")


def test_download_refuses_an_incomplete_upload(backend, tmp_path):
    bucket = backend.new_bucket()
    store = open_store(backend.uri(bucket, "repo"))
    store.put_bytes("m/1/model.onnx", b"x" * 10, sha256="0" * 64)
    with pytest.raises(StorageIntegrityError, match="incomplete"):
        download(backend.uri(bucket, "repo/m"), str(tmp_path / "dl"))


def _interrupted_reupload_keeps_the_previous_version(uri, tmp_path, monkeypatch):
    """Version 1 is uploaded whole; the upload of version 2 dies after its first object
    (the process is gone, or the network). A reader still gets version 1, every object
    of it; validate-repo names the unfinished upload; the same upload run again
    completes, the reader then gets version 2 and nothing kept is left behind."""
    from kfp_interop.storage import validate_repository

    def version(tag):
        files = {}
        for key, size in (("m/1/model.onnx", 3 * 1024 * 1024), ("m/config.pbtxt", 20)):
            path = tmp_path / f"{tag}_{key.replace('/', '_')}"
            path.write_bytes(os.urandom(size))
            files[key] = str(path)
        return files

    def contents(folder):
        return {rel: (folder / rel).read_bytes() for rel in ("1/model.onnx", "config.pbtxt")}

    old, new = version("v1"), version("v2")
    upload_tree(old, uri, manifest_dir="m")
    download(f"{uri}/m", str(tmp_path / "v1"))
    v1 = contents(tmp_path / "v1")
    store_class = type(open_store(uri))
    put_file = store_class.put_file
    calls = []

    def dies_after_first_object(self, key, path, **kw):
        if ".kfp-interop/" not in key:  # a kept copy may go through put_file too
            if calls:
                raise ConnectionError("the task was killed")
            calls.append(key)
        return put_file(self, key, path, **kw)

    monkeypatch.setattr(store_class, "put_file", dies_after_first_object)
    with pytest.raises((ConnectionError, StorageError)):
        upload_tree(new, uri, manifest_dir="m")
    monkeypatch.setattr(store_class, "put_file", put_file)
    store = open_store(uri)
    assert calls == ["m/1/model.onnx"]
    assert store.read_bytes("m/1/model.onnx") == open(new["m/1/model.onnx"], "rb").read()
    download(f"{uri}/m", str(tmp_path / "during"))
    assert contents(tmp_path / "during") == v1
    assert any("did not finish" in p.message
               for p in validate_repository(uri)["problems"])
    done = upload_tree(new, uri, manifest_dir="m")
    assert done["uploaded"] == ["m/config.pbtxt"] and done["skipped"] == ["m/1/model.onnx"]
    download(f"{uri}/m", str(tmp_path / "v2"))
    assert contents(tmp_path / "v2") == {rel: open(path, "rb").read() for rel, path in
                                         (("1/model.onnx", new["m/1/model.onnx"]),
                                          ("config.pbtxt", new["m/config.pbtxt"]))}
    assert not [k for k in store.list_keys("m") if ".kfp-interop" in k]


def test_an_interrupted_upload_leaves_the_previous_version_readable(backend, tmp_path,
                                                                    monkeypatch):
    bucket = backend.new_bucket()
    _interrupted_reupload_keeps_the_previous_version(backend.uri(bucket, "repo"), tmp_path,
                                                     monkeypatch)


@pytest.mark.parametrize("where", ["folder", "pvc"])
def test_an_interrupted_upload_into_a_folder_or_claim_leaves_the_previous_version(
        where, tmp_path, monkeypatch):
    monkeypatch.setenv("KFP_INTEROP_PVC_ROOT", str(tmp_path / "claims"))
    (tmp_path / "claims" / "models-pvc").mkdir(parents=True)
    uri = "pvc://models-pvc/repo" if where == "pvc" else str(tmp_path / "repo")
    _interrupted_reupload_keeps_the_previous_version(uri, tmp_path, monkeypatch)


def test_a_first_upload_interrupted_is_refused_as_incomplete(backend, tmp_path, monkeypatch):
    """With no previous version there is nothing to fall back to: no manifest, refused."""
    uri = backend.uri(backend.new_bucket(), "repo")
    model = tmp_path / "model.onnx"
    model.write_bytes(os.urandom(1024))
    store_class = type(open_store(uri))
    put_bytes = store_class.put_bytes

    def manifest_never_written(self, key, data, **kw):
        raise ConnectionError("the task was killed")

    monkeypatch.setattr(store_class, "put_bytes", manifest_never_written)
    with pytest.raises((ConnectionError, StorageError)):
        upload_tree({"m/1/model.onnx": str(model)}, uri, manifest_dir="m")
    monkeypatch.setattr(store_class, "put_bytes", put_bytes)
    with pytest.raises(StorageIntegrityError, match="incomplete"):
        download(f"{uri}/m", str(tmp_path / "dl"))


def test_a_manifest_from_storage_cannot_steer_reads_outside_the_model(backend, tmp_path):
    """The manifest is data: a 'sha256' that is a path is refused before any read."""
    uri = backend.uri(backend.new_bucket(), "repo")
    store = open_store(uri)
    store.put_bytes("m/1/model.onnx", b"x", sha256="0" * 64)
    body = json.dumps({"format": "kfp-interop-manifest/1", "objects": {
        "m/1/model.onnx": {"sha256": "../../../other/secret"}}}).encode()
    store.put_bytes("m/kfp-interop-manifest.json", body, sha256="0" * 64)
    with pytest.raises(StorageIntegrityError, match="not a kfp-interop manifest"):
        download(f"{uri}/m", str(tmp_path / "dl"))


def test_wrong_credentials_are_refused_without_leaking(iris_onnx, backend, tmp_path,
                                                       monkeypatch):
    bucket = backend.new_bucket()
    if backend.scheme == "s3":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        secret = "not-the-secret"
    elif backend.scheme == "az":
        secret = "bm90LXRoZS1rZXk="
        good = backend.env["AZURE_STORAGE_CONNECTION_STRING"]
        key = good.split("AccountKey=")[1].split(";")[0]
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", good.replace(key, secret))
    else:
        # the emulator checks no credentials (nor would it know Google's): what is
        # checked is ours, a key file that is not one
        monkeypatch.delenv("STORAGE_EMULATOR_HOST")
        secret = '"private_key": "-----BEGIN PRIVATE KEY-----not-a-key"'
        (tmp_path / "sa.json").write_text("{" + secret + "}")
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "sa.json"))
    with pytest.raises(StorageAuthError) as info:
        upload(iris_onnx, backend.uri(bucket, "x"))
    assert secret not in str(info.value) and "not-a-key" not in str(info.value)


def test_unreachable_endpoint_is_said_within_the_timeout(iris_onnx, backend, monkeypatch):
    from services import free_port_block

    dead = f"http://127.0.0.1:{free_port_block(1)}"
    if backend.scheme == "s3":
        monkeypatch.setenv("S3_ENDPOINT", dead)
    elif backend.scheme == "gs":
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", dead)
    else:
        good = backend.env["AZURE_STORAGE_CONNECTION_STRING"]
        endpoint = good.split("BlobEndpoint=")[1].split(";")[0]
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                           good.replace(endpoint, f"{dead}/{AZURE_ACCOUNT}"))
    with pytest.raises(StorageUnavailableError, match="Cannot reach"):
        upload(iris_onnx, backend.uri("models", "x"))


def test_keys_that_leave_their_folder_are_refused_on_every_scheme(backend):
    store = open_store(backend.uri(backend.new_bucket(), "repo"))
    for key in ("../escape", "/abs", "a//b", "a/./b", ""):
        with pytest.raises(InvalidInputError, match="would leave its folder"):
            store.put_bytes(key, b"x", sha256="0" * 64)


@pytest.mark.parametrize("scheme", ["gs", "az"])
def test_the_server_dying_mid_upload_is_typed_on_gcs_and_azure(scheme, iris_onnx, tmp_path,
                                                               monkeypatch):
    """Kill the emulator while the upload runs: a typed error that says the upload is
    incomplete, not a library's traceback."""
    from services import Azurite, GCSEmulator

    server = (GCSEmulator if scheme == "gs" else Azurite)(str(tmp_path / scheme))
    try:
        server.start()
    except RuntimeError as e:  # Azurite not installed (needs node)
        if os.environ.get("CI"):
            pytest.fail(str(e))
        pytest.skip(str(e))
    try:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        backend = Backend(scheme, server.env())
        uri = backend.uri(backend.new_bucket(), "repo")
        big = tmp_path / f"{scheme}.onnx"
        big.write_bytes(os.urandom(4 * 1024 * 1024))
        small = tmp_path / f"{scheme}.pbtxt"
        small.write_text('name: "m"')

        class KillAfterFirst:
            def set_meta(self, object_name, total_length):
                pass

            def update(self, size):
                threading.Thread(target=server.kill).start()
                server.proc.wait(10)

        with pytest.raises(StorageError) as info:
            upload_tree({"m/1/model.onnx": str(big), "m/config.pbtxt": str(small)},
                        uri, manifest_dir="m", progress=KillAfterFirst())
        assert isinstance(info.value, StorageUnavailableError), info.value
        assert "incomplete" in str(info.value)
    finally:
        server.stop()


def test_a_data_set_at_a_gcs_or_azure_uri_is_read_fingerprinted_and_named(backend, tmp_path):
    """load_data / fingerprint_data take a CSV at any scheme's URI through the store's
    own client: fetched for the step only, fingerprinted by its bytes, named by its URI;
    a missing object is a typed error naming it."""
    import pandas as pd

    from kfp_interop.data import source_fingerprint
    from kfp_interop.steps import fingerprint_data_step, load_data_step

    bucket = backend.new_bucket()
    rows = tmp_path / "rows.csv"
    pd.DataFrame({"a": [float(i) for i in range(40)], "b": [i % 7 for i in range(40)],
                  "y": ["no", "yes"] * 20}).to_csv(rows, index=False)
    open_store(backend.uri(bucket)).put_file("data/rows.csv", str(rows), sha256="0" * 64)
    uri = backend.uri(bucket, "data/rows.csv")
    fp = fingerprint_data_step(dataset=uri)
    assert fp == source_fingerprint(str(rows))
    meta = load_data_step(dataset=uri, target_column="y", source_fingerprint=fp,
                          train_path=str(tmp_path / "train"), test_path=str(tmp_path / "test"))
    assert meta["source"] == uri and meta["class_labels"] == ["no", "yes"]
    with pytest.raises(StorageError, match="data/missing.csv") as info:
        fingerprint_data_step(dataset=backend.uri(bucket, "data/missing.csv"))
    assert "NoSuchKey" in str(info.value)


@pytest.fixture
def web(tmp_path):
    """A plain web server on 127.0.0.1 serving a folder (what an http:// data set or model
    file is)."""
    import functools
    import http.server

    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_data_set_at_a_web_address_is_read_and_can_be_pinned_by_sha256(web, tmp_path):
    import pandas as pd

    from kfp_interop.data import source_fingerprint
    from kfp_interop.files import sha256_file
    from kfp_interop.steps import fingerprint_data_step, load_data_step

    folder, base = web
    pd.DataFrame({"a": [float(i) for i in range(40)], "y": ["no", "yes"] * 20}).to_csv(
        folder / "rows.csv", index=False)
    digest = sha256_file(folder / "rows.csv")
    uri = f"{base}/rows.csv"
    assert fingerprint_data_step(dataset=uri) == source_fingerprint(str(folder / "rows.csv"))
    pinned = f"{uri}#sha256={digest}"
    meta = load_data_step(dataset=pinned, target_column="y", train_path=str(tmp_path / "tr"),
                          test_path=str(tmp_path / "te"))
    assert meta["source"] == pinned
    # the content is not what the URI pins: refused, nothing written
    with pytest.raises(StorageIntegrityError, match=f"not the {'0' * 64} its URI pins"):
        load_data_step(dataset=f"{uri}#sha256={'0' * 64}", target_column="y",
                       train_path=str(tmp_path / "t2"), test_path=str(tmp_path / "s2"))
    assert not (tmp_path / "t2").exists()
    with pytest.raises(StorageError, match="404, NoSuchKey"):
        fingerprint_data_step(dataset=f"{base}/missing.csv")


def test_web_addresses_are_read_only_and_checked(iris_onnx, web):
    from services import free_port_block

    from kfp_interop.errors import UnsupportedOperationError
    from kfp_interop.storage import validate_repository

    _, base = web
    with pytest.raises(UnsupportedOperationError, match="read-only"):
        upload(iris_onnx, f"{base}/repo")
    with pytest.raises(UnsupportedOperationError, match="read-only"):
        validate_repository(f"{base}/repo")
    for bad in (f"{base}/x.csv?token=abc", "https://user:pw@host/x.csv"):
        with pytest.raises(InvalidInputError) as info:
            parse_uri(bad)
        assert "abc" not in str(info.value) and "pw" not in str(info.value)  # not echoed
    with pytest.raises(InvalidInputError, match="only fragment taken is #sha256="):
        parse_uri(f"{base}/x.csv#md5=abc")
    from kfp_interop.steps import fingerprint_data_step

    with pytest.raises(StorageUnavailableError, match="Cannot reach"):
        fingerprint_data_step(dataset=f"http://127.0.0.1:{free_port_block(1)}/x.csv")


def test_a_model_and_its_metadata_are_adopted_and_imported_from_a_web_address(
        iris_onnx, web, tmp_path, capsys):
    """adopt and metadata import read their files from a URI like data sets do: the
    pin is checked (a differing object is refused and nothing is written) and the
    record's origin names the address."""
    import shutil

    from kfp_interop.cli import main
    from kfp_interop.files import sha256_file
    from kfp_interop.metadata import verify_onnx_sha256
    from kfp_interop.metadata.render import render

    folder, base = web
    shutil.copyfile(iris_onnx, folder / "model.onnx")
    digest = sha256_file(folder / "model.onnx")
    uri = f"{base}/model.onnx#sha256={digest}"
    assert main(["adopt", uri, "--name", "iris-web", "--output-dir",
                 str(tmp_path / "adopted")]) == 0
    record = verify_onnx_sha256(str(tmp_path / "adopted" / "model.onnx"))
    assert record.origin["source"] == uri and record.name == "iris-web"
    capsys.readouterr()
    assert main(["adopt", f"{base}/model.onnx#sha256={'0' * 64}", "--output-dir",
                 str(tmp_path / "refused")]) != 0
    assert f"not the {'0' * 64} its URI pins" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()
    assert main(["adopt", f"{base}/model.bin", "--output-dir",
                 str(tmp_path / "refused")]) == 2
    assert "give the URI of one .onnx object" in capsys.readouterr().err

    (folder / "config.pbtxt").write_text(render(load_metadata(iris_onnx), "triton"))
    capsys.readouterr()
    assert main(["metadata", "import", "--from", "triton", f"{base}/config.pbtxt",
                 "--onnx", uri, "--output-dir", str(tmp_path / "imported")]) == 0
    imported = verify_onnx_sha256(str(tmp_path / "imported" / "model.onnx"))
    assert imported.origin == {"kind": "imported", "source": f"{base}/config.pbtxt",
                               "format": "triton"}
    assert imported.inputs == load_metadata(iris_onnx).inputs


def test_the_cli_downloads_a_model_folder_checked(iris_onnx, backend, tmp_path, capsys):
    from kfp_interop.cli import main

    uri = backend.uri(backend.new_bucket(), "repo")
    assert main(["upload", iris_onnx, "--to", uri]) == 0
    capsys.readouterr()
    assert main(["download", f"{uri}/iris", "--to", str(tmp_path / "iris")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert "iris/1/model.onnx" in printed["objects"]
    assert load_metadata(str(tmp_path / "iris" / "1" / "model.onnx")) == load_metadata(
        iris_onnx)
    # a new version folder beside the first, for servers that switch on it
    assert main(["upload", iris_onnx, "--to", uri, "--version", "2"]) == 0
    assert {"iris/1/model.onnx", "iris/2/model.onnx"} <= set(open_store(uri).list_keys("iris"))
    from kfp_interop.storage import validate_repository

    report = validate_repository(uri)  # version 1 stays listed in the manifest
    assert report["problems"] == [] and report["models"]["iris"]["versions"] == ["1", "2"]
    download(f"{uri}/iris", str(tmp_path / "both"))
    assert (tmp_path / "both" / "1" / "model.onnx").is_file()
    assert (tmp_path / "both" / "2" / "model.onnx").is_file()
    assert main(["upload", iris_onnx, "--to", uri, "--version", "../2"]) == 2
    assert "a positive integer" in capsys.readouterr().err


def test_a_persistent_volume_claim_is_a_mounted_folder(iris_onnx, tmp_path, monkeypatch):
    """pvc://claim/path reads and writes the claim where it is mounted
    (KFP_INTEROP_PVC_ROOT/<claim>: a folder here, the claim on a cluster); an unmounted
    claim is refused rather than written into the container; KServe takes the URI as it
    is (it mounts claims itself), without a storage service account."""
    from kfp_interop.deploy import render_manifest, validate_manifest
    from kfp_interop.storage import validate_repository
    from test_deploy import strict_schema

    monkeypatch.setenv("KFP_INTEROP_PVC_ROOT", str(tmp_path / "claims"))
    (tmp_path / "claims" / "models-pvc").mkdir(parents=True)
    result = upload(iris_onnx, "pvc://models-pvc/repo", layout="triton")
    assert (tmp_path / "claims" / "models-pvc" / "repo" / "iris" / "1" / "model.onnx").is_file()
    assert result["model_uri"] == "pvc://models-pvc/repo/iris"
    assert validate_repository("pvc://models-pvc/repo")["problems"] == []
    download(result["model_uri"], str(tmp_path / "dl"))
    assert load_metadata(str(tmp_path / "dl" / "1" / "model.onnx")) == load_metadata(iris_onnx)
    with pytest.raises(StorageError, match="Claim 'other' is not mounted here"):
        upload(iris_onnx, "pvc://other/repo")
    assert not (tmp_path / "claims" / "other").exists()
    for bad in ("pvc://Bad_Claim/x", "pvc:///x", "pvc://models-pvc/../x"):
        with pytest.raises(InvalidInputError):
            parse_uri(bad)
    _, m = render_manifest("kserve", iris_onnx, storage_uri="pvc://models-pvc/repo")
    validate_manifest(m, strict_schema("kserve"))
    assert m["spec"]["predictor"]["model"]["storageUri"] == "pvc://models-pvc/repo"
    assert "serviceAccountName" not in m["spec"]["predictor"]


@pytest.mark.parametrize("scheme", ["gs", "az", "pvc"])
def test_the_tabular_pipeline_stores_its_model_on_each_scheme(scheme, tmp_path,
                                                              monkeypatch, request):
    """A local run end to end with storage_uri on the scheme (credentials from the
    environment, as the Secrets give them on a cluster; a claim as the folder
    KFP_INTEROP_PVC_ROOT maps it to, the local rehearsal of compile --storage-pvc): the
    upload task writes the Triton repository there, and it validates as Triton will
    read it. S3's run is in tests/test_pipeline.py."""
    from kfp_interop.runs import run
    from kfp_interop.storage import validate_repository

    if scheme == "pvc":
        monkeypatch.setenv("KFP_INTEROP_PVC_ROOT", str(tmp_path / "claims"))
        (tmp_path / "claims" / "models-pvc").mkdir(parents=True)
        uri = "pvc://models-pvc/repo"
    else:
        env = request.getfixturevalue({"gs": "gcs_env", "az": "azure_env"}[scheme])
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        backend = Backend(scheme, env)
        uri = backend.uri(backend.new_bucket(), "repo")
    summary = run("tabular", {"storage_uri": uri, "register": False},
                  output_dir=str(tmp_path / "out"))
    assert summary["status"] == "succeeded", summary.get("error")
    assert summary["upload"]["model_uri"] == f"{uri}/iris-sklearn"
    checked = validate_repository(uri)
    assert checked["problems"] == [] and list(checked["models"]) == ["iris-sklearn"]
