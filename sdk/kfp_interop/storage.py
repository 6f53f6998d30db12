"""Object storage for models: ``s3://bucket/prefix`` (through the ``minio`` SDK, any
S3-compatible server) and local folders, in the layout each serving runtime needs.

Layouts (``<root>`` is the URI given; ``<name>`` the serving name):

* ``triton`` — a Triton model repository, for KServe's ONNX runtime and Seldon's Triton
  server: ``<root>/<name>/config.pbtxt``, ``<root>/<name>/<version>/model.onnx`` and the
  record ``<root>/<name>/model.metadata.json``. The folder name must equal the serving
  name, or the server reports Ready and answers "unknown model".
* ``mlserver`` — an MLflow model (``MLmodel`` + ``model.onnx``) with MLServer's
  ``model-settings.json`` (runtime ``mlserver_mlflow.MLflowRuntime``) in ``<root>/<name>/``.

Integrity: every object carries its sha256 (object metadata ``x-amz-meta-sha256``), and a
manifest ``<root>/<name>/kfp-interop-manifest.json`` listing every object with its sha256
is written **last**: a model without its manifest is an incomplete upload, and
:func:`download` refuses it. A re-upload first removes the old manifest, so a model being
replaced never looks complete halfway. Uploads are idempotent: objects whose stored
sha256 already matches are skipped. Single objects are atomic in S3 (a multipart upload
that dies leaves no object).

Credentials come from the environment only, with the names KServe's storage initializer
reads from the same Secret: ``S3_ENDPOINT`` or ``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``S3_USE_HTTPS``, ``AWS_REGION``. On a
cluster, mount the Secret with ``kfp-kubernetes`` (see ``manifests/``); never pass keys as
pipeline parameters. Secrets never appear in messages or ``repr``.

A missing bucket is refused (a typo should not create buckets) unless
``create_bucket=True``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from typing import Any, Mapping

from kfp_interop.errors import (InvalidInputError, StorageAuthError, StorageError,
                                StorageIntegrityError, StorageUnavailableError)
from kfp_interop.native import sha256_file

__all__ = ["LAYOUTS", "MANIFEST_NAME", "S3Settings", "parse_uri", "layout_files", "upload",
           "upload_tree", "download"]

LAYOUTS = ("triton", "mlserver")
MANIFEST_NAME = "kfp-interop-manifest.json"
_AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied",
               "InvalidToken", "ExpiredToken"}


@dataclasses.dataclass(frozen=True)
class S3Settings:
    """Where the S3 server is and how to sign in (the secret never shows in ``repr``)."""

    endpoint: str
    access_key: str = dataclasses.field(repr=False, default="")
    secret_key: str = dataclasses.field(repr=False, default="")
    secure: bool = True
    region: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "S3Settings":
        env = os.environ if env is None else env
        endpoint = env.get("S3_ENDPOINT") or env.get("AWS_ENDPOINT_URL") or ""
        if not endpoint:
            raise StorageError(
                "No S3 endpoint configured: set S3_ENDPOINT (or AWS_ENDPOINT_URL), "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment (on a "
                "cluster: the kfp-interop-s3 Secret, see manifests/).")
        secure = str(env.get("S3_USE_HTTPS", "1")).lower() not in ("0", "false", "no")
        if "://" in endpoint:
            scheme, endpoint = endpoint.split("://", 1)
            secure = scheme == "https"
        return cls(endpoint=endpoint.rstrip("/"), access_key=env.get("AWS_ACCESS_KEY_ID", ""),
                   secret_key=env.get("AWS_SECRET_ACCESS_KEY", ""), secure=secure,
                   region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None)

    def client(self, *, retries: int = 3, timeout: float = 20.0):
        import urllib3
        from minio import Minio

        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=min(5.0, timeout), read=timeout),
            retries=urllib3.Retry(total=retries, backoff_factor=0.2,
                                  status_forcelist=(500, 502, 503, 504)))
        return Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key,
                     secure=self.secure, region=self.region, http_client=http)


def parse_uri(uri: str) -> tuple[str, str, str]:
    """``s3://bucket/prefix`` -> ("s3", bucket, prefix); a path -> ("file", "", abspath)."""
    if not uri:
        raise InvalidInputError("Storage URI is empty: use s3://bucket/prefix or a folder path.")
    if uri.startswith("s3://"):
        bucket, _, prefix = uri[5:].partition("/")
        if not bucket:
            raise InvalidInputError(f"Storage URI {uri!r} names no bucket: use s3://bucket/prefix.")
        return "s3", bucket, prefix.strip("/")
    if "://" in uri:
        raise InvalidInputError(f"Storage URI {uri!r}: only s3:// URIs and local paths are "
                                "supported.")
    return "file", "", os.path.abspath(uri)


def layout_files(model: str, layout: str, workdir: str, *, name: str = "",
                 version: str = "") -> tuple[str, dict[str, str], Any]:
    """Files of ``model`` in ``layout``, staged in ``workdir``:
    (name, {relative key: path}, the model's record)."""
    from kfp_interop.deploy import model_file
    from kfp_interop.metadata import load_metadata, sidecar_path
    from kfp_interop.metadata.render import to_triton_config, to_mlflow_signature

    if layout not in LAYOUTS:
        raise InvalidInputError(f"Unknown layout {layout!r}; use one of {list(LAYOUTS)}.")
    onnx_path = model_file(model)
    record = load_metadata(onnx_path)
    name = name or record.name
    from kfp_interop.targets import check_name

    check_name(name, "model name")
    version = version or record.version
    record_file = os.path.join(workdir, "model.metadata.json")
    side = sidecar_path(onnx_path)
    if os.path.isfile(side):
        shutil.copyfile(side, record_file)
    else:
        with open(record_file, "w") as f:
            f.write(record.to_json(indent=2))
    if layout == "triton":
        config = os.path.join(workdir, "config.pbtxt")
        served = record if name == record.name else record.replace(
            model={**record.model, "name": name})
        with open(config, "w") as f:
            f.write(to_triton_config(served))
        return name, {f"{name}/config.pbtxt": config, f"{name}/{version}/model.onnx": onnx_path,
                      f"{name}/model.metadata.json": record_file}, record
    import mlflow.onnx
    import onnx
    from mlflow.models.signature import ModelSignature

    mlflow_dir = os.path.join(workdir, "mlflow")
    mlflow.onnx.save_model(onnx.load(onnx_path), mlflow_dir,
                           signature=ModelSignature.from_dict(to_mlflow_signature(record)))
    settings = os.path.join(workdir, "model-settings.json")
    with open(settings, "w") as f:
        json.dump({"name": name, "implementation": "mlserver_mlflow.MLflowRuntime",
                   "parameters": {"uri": "./", "version": version}}, f, indent=2)
    files = {f"{name}/model-settings.json": settings, f"{name}/model.metadata.json": record_file}
    for root, _, names in os.walk(mlflow_dir):
        for fname in names:
            full = os.path.join(root, fname)
            files[f"{name}/{os.path.relpath(full, mlflow_dir)}"] = full
    return name, files, record


def _s3_errors(settings: S3Settings, what: str):
    """Context manager turning minio/urllib3 failures into typed storage errors."""
    import contextlib

    @contextlib.contextmanager
    def guard():
        import urllib3
        from minio.error import S3Error

        try:
            yield
        except S3Error as e:
            if e.code in _AUTH_CODES:
                raise StorageAuthError(
                    f"S3 at {settings.endpoint} refused the credentials ({e.code}) while "
                    f"{what}: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.") from None
            if e.code == "NoSuchBucket":
                raise StorageError(f"Bucket {e.bucket_name!r} does not exist at "
                                   f"{settings.endpoint}: create it first, or pass "
                                   "create_bucket=True (--create-bucket).") from None
            raise StorageError(f"S3 error {e.code} while {what}: {e.message}") from None
        except (urllib3.exceptions.HTTPError, OSError) as e:
            if isinstance(e, StorageError):
                raise
            raise StorageUnavailableError(
                f"Cannot reach S3 at {settings.endpoint} while {what} "
                f"({type(e).__name__}: {str(e)[:200]}). The upload is incomplete (no "
                "manifest was written); run it again when the endpoint is back.") from None

    return guard()


def upload_tree(files: Mapping[str, str], uri: str, *, settings: S3Settings | None = None,
                create_bucket: bool = False, manifest_dir: str = "",
                extra: Mapping[str, Any] | None = None, progress=None) -> dict[str, Any]:
    """Upload ``{key: local path}`` under ``uri`` with per-object sha256 and, last, the
    manifest ``<manifest_dir>/kfp-interop-manifest.json``.

    Returns:
        ``{"uri", "objects": {key: sha256}, "uploaded": [...], "skipped": [...]}``.
    """
    scheme, bucket, prefix = parse_uri(uri)
    objects = {key: {"sha256": sha256_file(path), "size": os.path.getsize(path)}
               for key, path in sorted(files.items())}
    manifest = {"format": "kfp-interop-manifest/1", "objects": objects, **(extra or {})}
    manifest_key = f"{manifest_dir.strip('/')}/{MANIFEST_NAME}".lstrip("/")
    uploaded, skipped = [], []
    if scheme == "file":
        for key, path in files.items():
            dest = os.path.join(prefix, key)
            if os.path.isfile(dest) and sha256_file(dest) == objects[key]["sha256"]:
                skipped.append(key)
                continue
            if not uploaded and os.path.exists(os.path.join(prefix, manifest_key)):
                os.remove(os.path.join(prefix, manifest_key))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copyfile(path, dest + ".partial")
            os.replace(dest + ".partial", dest)
            uploaded.append(key)
        dest = os.path.join(prefix, manifest_key)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest + ".partial", "w") as f:
            json.dump(manifest, f, indent=2, sort_keys=True)
        os.replace(dest + ".partial", dest)
        return {"uri": uri, "objects": {k: v["sha256"] for k, v in objects.items()},
                "uploaded": uploaded, "skipped": skipped, "manifest": manifest_key}
    settings = settings or S3Settings.from_env()
    client = settings.client()
    full = lambda key: f"{prefix}/{key}" if prefix else key  # noqa: E731
    with _s3_errors(settings, f"uploading to {uri}"):
        if not client.bucket_exists(bucket):
            if not create_bucket:
                raise StorageError(f"Bucket {bucket!r} does not exist at {settings.endpoint}: "
                                   "create it first, or pass create_bucket=True "
                                   "(--create-bucket).")
            client.make_bucket(bucket)
        manifest_removed = False
        for key, path in sorted(files.items()):
            try:
                stat = client.stat_object(bucket, full(key))
                stored = {k.lower(): v for k, v in (stat.metadata or {}).items()}
                if stored.get("x-amz-meta-sha256") == objects[key]["sha256"]:
                    skipped.append(key)
                    continue
            except Exception as e:  # noqa: BLE001 - not found (or unreadable): upload it
                from minio.error import S3Error

                if not isinstance(e, S3Error) or e.code not in ("NoSuchKey", "NoSuchObject"):
                    raise
            if not manifest_removed:  # replacing content: the old model stops looking whole
                client.remove_object(bucket, full(manifest_key))
                manifest_removed = True
            client.fput_object(bucket, full(key), path,
                               metadata={"sha256": objects[key]["sha256"]}, progress=progress)
            uploaded.append(key)
        body = json.dumps(manifest, indent=2, sort_keys=True).encode()
        import io

        client.put_object(bucket, full(manifest_key), io.BytesIO(body), len(body),
                          content_type="application/json",
                          metadata={"sha256": hashlib.sha256(body).hexdigest()})
    return {"uri": uri, "objects": {k: v["sha256"] for k, v in objects.items()},
            "uploaded": uploaded, "skipped": skipped, "manifest": manifest_key}


def upload(model: str, uri: str, *, layout: str = "triton", name: str = "",
           version: str = "", settings: S3Settings | None = None,
           create_bucket: bool = False) -> dict[str, Any]:
    """Upload a model (folder or ONNX file with its record) in ``layout`` under ``uri``.

    Returns:
        The upload result plus ``model_uri`` (``<uri>/<name>``), ``name``, ``layout``.

    Raises:
        StorageAuthError, StorageUnavailableError, StorageError, InvalidInputError.
    """
    with tempfile.TemporaryDirectory(prefix="kfp-interop-upload-") as work:
        name, files, record = layout_files(model, layout, work, name=name, version=version)
        result = upload_tree(files, uri, settings=settings, create_bucket=create_bucket,
                             manifest_dir=name, extra={
                                 "layout": layout, "name": name,
                                 "onnx_sha256": record.model["onnx_sha256"]})
    result.update(model_uri=f"{uri.rstrip('/')}/{name}", name=name, layout=layout)
    return result


def download(uri: str, dest: str, *, settings: S3Settings | None = None) -> dict[str, Any]:
    """Download the model folder at ``uri`` (``<root>/<name>``) into ``dest`` and verify
    every object against the manifest.

    Raises:
        StorageIntegrityError: no manifest (an incomplete upload) or a sha256 mismatch
            (the bad file is removed).
    """
    scheme, bucket, prefix = parse_uri(uri)
    os.makedirs(dest, exist_ok=True)
    if scheme == "file":
        mpath = os.path.join(prefix, MANIFEST_NAME)
        if not os.path.isfile(mpath):
            raise StorageIntegrityError(f"{uri} has no {MANIFEST_NAME}: the upload is "
                                        "incomplete (or this is not a kfp-interop model).")
        with open(mpath) as f:
            manifest = json.load(f)
        root = os.path.dirname(prefix)
        fetch = lambda key, out: shutil.copyfile(os.path.join(root, key), out)  # noqa: E731
    else:
        settings = settings or S3Settings.from_env()
        client = settings.client()
        root = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        full = lambda key: f"{root}/{key}" if root else key  # noqa: E731
        with _s3_errors(settings, f"downloading {uri}"):
            from minio.error import S3Error

            try:
                resp = client.get_object(bucket, f"{prefix}/{MANIFEST_NAME}")
                manifest = json.loads(resp.read())
                resp.close()
            except S3Error as e:
                if e.code in ("NoSuchKey", "NoSuchObject"):
                    raise StorageIntegrityError(
                        f"{uri} has no {MANIFEST_NAME}: the upload is incomplete (or this is "
                        "not a kfp-interop model); upload it again.") from None
                raise
        fetch = lambda key, out: client.fget_object(bucket, full(key), out)  # noqa: E731
    verified = {}
    for key, meta in manifest["objects"].items():
        out = os.path.join(dest, key.split("/", 1)[1] if "/" in key else key)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        if scheme == "file":
            fetch(key, out)
        else:
            with _s3_errors(settings, f"downloading {key}"):
                fetch(key, out)
        actual = sha256_file(out)
        if actual != meta["sha256"]:
            os.remove(out)
            raise StorageIntegrityError(f"{key} at {uri}: sha256 {actual} differs from the "
                                        f"manifest's {meta['sha256']}: the object is corrupt.")
        verified[key] = actual
    return {"uri": uri, "dest": dest, "objects": verified, "manifest": manifest}
