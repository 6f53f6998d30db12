"""Object storage for models: schemes (:mod:`.s3` through the ``minio`` SDK, :mod:`.gcs`
through ``google-cloud-storage``, :mod:`.azure` through ``azure-storage-blob``,
:mod:`.http` read-only web addresses, :mod:`.pvc` mounted PersistentVolumeClaims,
:mod:`.local` folders) in the :data:`SCHEMES` registry, runtime layouts (:mod:`.layouts`) in
:data:`LAYOUTS`, and the upload/download flows with per-object sha256 and a manifest
written last (:mod:`.transfer`), and checking a Triton-layout repository as Triton will
read it (:mod:`.validate`)."""

from kfp_interop.storage.base import SCHEMES, Store, register_scheme
from kfp_interop.storage.layouts import LAYOUTS, register_layout
# built-in schemes: importing a module registers it (minio is imported on first use)
from kfp_interop.storage import azure, gcs, http, local, pvc, s3  # noqa: F401,E402
from kfp_interop.storage.s3 import S3Settings
from kfp_interop.storage.transfer import (MANIFEST_NAME, download, layout_files, open_store,
                                          parse_uri, upload, upload_tree)
from kfp_interop.storage.validate import Problem, validate_repository

__all__ = ["SCHEMES", "LAYOUTS", "Store", "register_scheme", "register_layout", "S3Settings",
           "MANIFEST_NAME", "parse_uri", "open_store", "layout_files", "upload", "upload_tree",
           "download", "validate_repository", "Problem"]
