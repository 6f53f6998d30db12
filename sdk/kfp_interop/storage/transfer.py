"""Upload and download, once for every scheme and layout.

Integrity: every object carries its sha256, and a manifest
``<root>/<name>/kfp-interop-manifest.json`` listing every object with its sha256 is
written **last**: a model without its manifest is an incomplete upload, and
:func:`download` refuses it. The manifest is the commit point of a re-upload: before an
object of the previous version is overwritten, it is copied (server-side where the store
can) to ``<name>/.kfp-interop/previous/<sha256>``; the previous manifest stays until the
new one replaces it, and :func:`download` takes a listed object from there when the
object at its key has already changed. So an upload that dies halfway leaves the
previous version readable, whole, by :func:`download` (and by our serving runtime, which
downloads through it); the kept copies are removed once the new manifest is written.
Servers that read the folder's objects directly (KServe's storage initializer, Triton)
see each object whole but, during the upload, a mix of versions: ``validate-repo``
names an interrupted upload, and a new Triton version folder is the way to switch those
servers atomically. Uploads are idempotent: objects whose stored sha256 already matches
are skipped. A missing bucket is refused (a typo should not
create buckets) unless ``create_bucket=True``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from typing import Any, Callable, Mapping

from kfp_interop.errors import InvalidInputError, StorageIntegrityError
from kfp_interop.files import atomic_write, move, sha256_bytes, sha256_file
from kfp_interop.storage.base import SCHEMES, Store, check_key
from kfp_interop.storage.layouts import LAYOUTS

__all__ = ["MANIFEST_NAME", "RECORD_FILE", "parse_uri", "open_store", "layout_files",
           "upload_tree", "upload", "download"]

MANIFEST_NAME = "kfp-interop-manifest.json"
MANIFEST_FORMAT = "kfp-interop-manifest/1"
RECORD_FILE = "model.metadata.json"
#: where a re-upload keeps the previous version's objects until its manifest is written
PREVIOUS_DIR = ".kfp-interop/previous"


def _in_folder(folder: str, rel: str) -> str:
    return f"{folder.strip('/')}/{rel}".lstrip("/")


def _is_sha256(value: Any) -> bool:
    return (isinstance(value, str) and len(value) == 64
            and all(c in "0123456789abcdef" for c in value))


def _previous_objects(store: Store, manifest_key: str) -> dict[str, dict[str, Any]]:
    """``{key: {"sha256", "size"}}`` of the manifest already in the store; empty when
    there is none or it is not one of ours (nothing of it is then kept)."""
    raw = store.read_bytes(manifest_key)
    try:
        objects = json.loads(raw)["objects"] if raw else {}
        return {key: meta for key, meta in objects.items()
                if isinstance(key, str) and _is_sha256(meta.get("sha256"))}
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}


def parse_uri(uri: str) -> tuple[str, str, str]:
    """``s3://bucket/prefix`` -> ("s3", bucket, prefix); a path -> ("file", "", abspath);
    a URI a scheme claims (Azure's https://ACCOUNT.blob.core.windows.net/...) -> that
    scheme's."""
    if not uri:
        raise InvalidInputError("Storage URI is empty: use s3://bucket/prefix or a folder path.")
    claimed = [name for name, cls in SCHEMES.items() if cls.claims(uri)]
    scheme = claimed[0] if claimed else (uri.split("://", 1)[0] if "://" in uri else "file")
    if not claimed and (scheme == "file" and "://" in uri or scheme not in SCHEMES):
        known = ", ".join(f"{s}://" for s in SCHEMES.names() if s != "file")
        raise InvalidInputError(f"Storage URI {uri!r}: the storage schemes are {known} "
                                "(Azure also as https://ACCOUNT.blob.core.windows.net/...) "
                                "and local paths (add a scheme with kfp_interop.storage."
                                "register_scheme).")
    bucket, root = SCHEMES.get(scheme).parse(uri)
    return scheme, bucket, root


def open_store(uri: str, *, settings: Any = None) -> Store:
    """The store for a URI's location."""
    scheme, bucket, root = parse_uri(uri)
    return SCHEMES.get(scheme)(bucket, root, settings=settings)


def layout_files(model: str, layout: str, workdir: str, *, name: str = "",
                 version: str = "") -> tuple[str, dict[str, str], Any]:
    """Files of ``model`` in ``layout``, staged in ``workdir``:
    ``(name, {key: local path}, the model's record)``, keys starting with ``<name>/``."""
    from kfp_interop.naming import check_name
    from kfp_interop.metadata import load_metadata, sidecar_path
    from kfp_interop.onnx_model import find_onnx

    make = LAYOUTS.get(layout)
    onnx_path = find_onnx(model)
    record = load_metadata(onnx_path)
    name = check_name(name or record.name, "model name")
    if version and not re.fullmatch(r"[1-9][0-9]*", str(version)):
        raise InvalidInputError(f"Model version {version!r}: a positive integer (Triton's "
                                "version folders are numbers), e.g. --version 2.")
    version = str(version or record.version)
    side = sidecar_path(onnx_path)
    record_file = os.path.join(workdir, RECORD_FILE)
    if os.path.isfile(side):
        shutil.copyfile(side, record_file)
    else:
        atomic_write(record_file, record.to_json(indent=2))
    files = {RECORD_FILE: record_file, **make(record, onnx_path, workdir, name, version)}
    return name, {check_key(f"{name}/{key}"): path for key, path in files.items()}, record


def upload_tree(files: Mapping[str, str], uri: str, *, settings: Any = None,
                create_bucket: bool = False, manifest_dir: str = "",
                extra: Mapping[str, Any] | None = None, progress=None,
                carry: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """Upload ``{key: local path}`` under ``uri`` with per-object sha256 and, last, the
    manifest ``<manifest_dir>/kfp-interop-manifest.json``. Objects the previous
    manifest lists for which ``carry(key)`` is true (e.g. the other version folders of
    a Triton model) stay listed in the new one while they are stored unchanged.

    Returns:
        ``{"uri", "objects": {key: sha256}, "uploaded": [...], "skipped": [...],
        "manifest": key}``.
    """
    store = open_store(uri, settings=settings)
    objects = {key: {"sha256": sha256_file(path), "size": os.path.getsize(path)}
               for key, path in sorted(files.items())}
    manifest = {"format": MANIFEST_FORMAT, "objects": objects, **(extra or {})}
    manifest_key = _in_folder(manifest_dir, MANIFEST_NAME)
    uploaded, skipped = [], []
    with store.guard(f"uploading to {uri}"):
        store.prepare(create_bucket=create_bucket)
        previous = _previous_objects(store, manifest_key)
        folder = _in_folder(manifest_dir, "")
        carried = {key: {"sha256": meta["sha256"], "size": meta.get("size")}
                   for key, meta in previous.items()
                   if carry is not None and key not in files and key.startswith(folder)
                   and carry(key) and store.stored_sha256(check_key(key)) == meta["sha256"]}
        manifest["objects"] = {**carried, **objects}
        for key, path in sorted(files.items()):
            stored = store.stored_sha256(key)
            if stored == objects[key]["sha256"]:
                skipped.append(key)
                continue
            if stored is not None and previous.get(key, {}).get("sha256") == stored:
                # the previous version's object: kept until the new manifest is written
                kept = _in_folder(manifest_dir, f"{PREVIOUS_DIR}/{stored}")
                if store.stored_sha256(kept) != stored:
                    store.copy(key, kept, sha256=stored)
            store.put_file(key, path, sha256=objects[key]["sha256"], progress=progress)
            uploaded.append(key)
        body = json.dumps(manifest, indent=2, sort_keys=True).encode()
        store.put_bytes(manifest_key, body, sha256=sha256_bytes(body),
                        content_type="application/json")
        for kept in store.list_keys(_in_folder(manifest_dir, PREVIOUS_DIR)):
            store.remove(kept)
    return {"uri": uri, "objects": {k: v["sha256"] for k, v in objects.items()},
            "carried": sorted(carried), "uploaded": uploaded, "skipped": skipped,
            "manifest": manifest_key}


def upload(model: str, uri: str, *, layout: str = "triton", name: str = "",
           version: str = "", settings: Any = None,
           create_bucket: bool = False) -> dict[str, Any]:
    """Upload a model (folder or ONNX file with its record) in ``layout`` under ``uri``.

    Returns:
        The upload result plus ``model_uri`` (``<uri>/<name>``), ``name``, ``layout``.

    Raises:
        StorageAuthError, StorageUnavailableError, StorageError, InvalidInputError.
    """
    with tempfile.TemporaryDirectory(prefix="kfp-interop-upload-") as work:
        name, files, record = layout_files(model, layout, work, name=name, version=version)
        writing = {key.split("/")[1] for key in files if key.count("/") >= 2}

        def other_version(key: str) -> bool:  # <name>/<n>/..., n not written now
            folder = key.split("/")[1] if key.count("/") >= 2 else ""
            return folder.isdigit() and folder not in writing

        result = upload_tree(files, uri, settings=settings, create_bucket=create_bucket,
                             manifest_dir=name, carry=other_version, extra={
                                 "layout": layout, "name": name,
                                 "onnx_sha256": record.model["onnx_sha256"]})
    result.update(model_uri=f"{uri.rstrip('/')}/{name}", name=name, layout=layout)
    return result


def _manifest(raw: bytes, uri: str, name: str) -> dict[str, Any]:
    """The manifest, checked: JSON, our format, every key a safe key inside
    ``<name>/`` with a sha256 (a manifest is data from storage, not to be trusted)."""
    try:
        manifest = json.loads(raw)
        objects = manifest["objects"]
        for key, meta in objects.items():
            check_key(key)
            if not key.startswith(f"{name}/") or not _is_sha256(meta.get("sha256")):
                raise InvalidInputError(f"{key!r} is not a file of {name!r} with a sha256")
    except (ValueError, TypeError, KeyError, AttributeError) as e:  # incl. InvalidInputError
        raise StorageIntegrityError(f"The manifest of {uri} is not a kfp-interop manifest "
                                    f"or names an object outside the model folder ({e}); "
                                    "upload the model again.") from e
    return manifest


def download(uri: str, dest: str, *, settings: Any = None) -> dict[str, Any]:
    """Download the model folder at ``uri`` (``<root>/<name>``) into ``dest`` and verify
    every object against the manifest.

    Objects are fetched into a staging folder beside ``dest`` and moved into ``dest``
    only when every one of them is verified: a refused or failed download leaves
    ``dest`` as it was. Every key stays inside ``dest`` (see :func:`check_key`).

    Raises:
        StorageIntegrityError: no manifest (an incomplete upload), a manifest naming an
            object outside the model folder, or a sha256 mismatch.
    """
    scheme, bucket, prefix = parse_uri(uri)
    parent, _, name = prefix.rstrip("/").rpartition("/")
    if scheme == "file":
        parent, name = os.path.dirname(prefix), os.path.basename(prefix)
    store = SCHEMES.get(scheme)(bucket, parent, settings=settings)
    with store.guard(f"downloading {uri}"):
        raw = store.read_bytes(f"{name}/{MANIFEST_NAME}")
    if raw is None:
        raise StorageIntegrityError(f"{uri} has no {MANIFEST_NAME}: the upload is incomplete "
                                    "(or this is not a kfp-interop model); upload it again.")
    manifest = _manifest(raw, uri, name)
    dest = os.path.abspath(dest)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    verified = {}
    with tempfile.TemporaryDirectory(prefix=".download-", dir=os.path.dirname(dest)) as stage:
        for key, meta in manifest["objects"].items():
            out = os.path.join(stage, key[len(name) + 1:])
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with store.guard(f"downloading {key}"):
                store.fetch(key, out)
                actual = sha256_file(out)
                kept = f"{name}/{PREVIOUS_DIR}/{meta['sha256']}"
                if actual != meta["sha256"] and store.stored_sha256(kept) is not None:
                    # a re-upload is under way or was interrupted: the listed version
                    # of this object is the one it kept
                    store.fetch(kept, out)
                    actual = sha256_file(out)
            if actual != meta["sha256"]:
                raise StorageIntegrityError(
                    f"{key} at {uri}: sha256 {actual} differs from the manifest's "
                    f"{meta['sha256']}: the object is corrupt.")
            verified[key] = actual
        for key in verified:  # all verified: move them into place
            move(os.path.join(stage, key[len(name) + 1:]), os.path.join(dest, key[len(name) + 1:]))
    return {"uri": uri, "dest": dest, "objects": verified, "manifest": manifest}
