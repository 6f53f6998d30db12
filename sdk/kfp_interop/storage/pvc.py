"""A PersistentVolumeClaim as storage: ``pvc://claim/path``, the form KServe's storage
initializer mounts for a predictor.

A task reads and writes the claim where it is mounted: the folder
``$KFP_INTEROP_PVC_ROOT/<claim>`` (default ``/mnt/kfp-interop/pvc``). On a cluster the
pipeline mounts the claim there; on your machine, point ``KFP_INTEROP_PVC_ROOT`` at a
folder holding one folder per claim to rehearse. A claim whose folder is not there is
refused (never written into the container's own file system, where it would vanish with
the pod). Objects are files, written as :mod:`.local` writes them (atomically, sha256
computed); keys stay inside the claim's folder.
"""

from __future__ import annotations

import os
import re
from typing import ClassVar

from kfp_interop.errors import InvalidInputError, StorageError
from kfp_interop.storage.base import register_scheme
from kfp_interop.storage.local import FolderStore

__all__ = ["PvcStore", "PVC_ROOT"]

#: where the claims are mounted, one folder per claim (``KFP_INTEROP_PVC_ROOT``)
PVC_ROOT = "/mnt/kfp-interop/pvc"
_CLAIM = re.compile(r"[a-z0-9]([-a-z0-9]{0,251}[a-z0-9])?")


def claim_folder(claim: str) -> str:
    return os.path.join(os.environ.get("KFP_INTEROP_PVC_ROOT") or PVC_ROOT, claim)


class PvcStore(FolderStore):
    """Files under ``pvc://claim/root``; ``bucket`` is the claim."""

    scheme: ClassVar[str] = "pvc"

    def __init__(self, bucket: str, root: str, *, settings=None):
        self.claim = bucket
        mounted = claim_folder(bucket)
        if not os.path.isdir(mounted):
            raise StorageError(
                f"Claim {bucket!r} is not mounted here ({mounted} is not a folder): on a "
                "cluster, mount the PersistentVolumeClaim into the task there (docs/"
                "storage.md); on your machine, set KFP_INTEROP_PVC_ROOT to a folder holding "
                f"a folder {bucket!r}.")
        folder = os.path.join(mounted, root) if root else mounted
        super().__init__("", folder, settings=settings)
        real = os.path.realpath(mounted)
        if os.path.commonpath([real, os.path.realpath(folder)]) != real:
            raise InvalidInputError(f"pvc://{bucket}/{root} leaves the claim's folder: "
                                    "refused.")
        self.uri_root = root

    @classmethod
    def parse(cls, uri: str) -> tuple[str, str]:
        from kfp_interop.storage.base import check_key

        claim, _, path = uri[len("pvc://"):].partition("/")
        if not _CLAIM.fullmatch(claim or ""):
            raise InvalidInputError(f"Storage URI {uri!r} names no claim (a Kubernetes name: "
                                    "lowercase letters, digits, '-'): use pvc://claim/path.")
        path = path.strip("/")
        if path:
            check_key(path)
        return claim, path

    def describe(self) -> str:
        return f"pvc://{self.claim}/{self.uri_root}".rstrip("/") + f" at {self.root}"


register_scheme(PvcStore)
