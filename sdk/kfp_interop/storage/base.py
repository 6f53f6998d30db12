"""What every storage scheme implements: a flat key space under one root, with each
object's sha256 kept beside it. The upload and download flows (:mod:`.transfer`) are
written once against this interface."""

from __future__ import annotations

import contextlib
import os
from typing import Any, ClassVar, ContextManager

from kfp_interop.errors import InvalidInputError, StorageError
from kfp_interop.registry import Registry

__all__ = ["Store", "SCHEMES", "register_scheme", "check_key", "missing_container",
           "INCOMPLETE_UPLOAD"]

#: what an unreachable endpoint means for an upload in progress (every scheme says it)
INCOMPLETE_UPLOAD = ("The upload is incomplete (no manifest was written); run it again "
                     "when the endpoint is back.")


def missing_container(what: str, where: str) -> StorageError:
    """The error for a bucket or container that does not exist (``what``, e.g.
    ``Bucket 'x'``; ``where``, e.g. ``at host:9000``), saying how to create it."""
    return StorageError(f"{what} does not exist {where}: create it first, or pass "
                        "create_bucket=True (--create-bucket).")


def check_key(key: str) -> str:
    """An object key that stays inside its root: relative, ``/``-separated, no empty,
    ``.`` or ``..`` part, no backslash or NUL. Every key a store reads or writes passes
    here, whoever wrote it (a layout, a manifest from storage).

    Raises:
        InvalidInputError: naming the key.
    """
    parts = key.split("/") if isinstance(key, str) else []
    if (not parts or key.startswith("/") or "\\" in key or "\x00" in key
            or any(p in ("", ".", "..") for p in parts)):
        raise InvalidInputError(f"Object key {key!r} would leave its folder (an absolute "
                                "path, an empty, '.' or '..' part, a backslash): refused.")
    return key


class Store:
    """Objects under ``root`` of one location (a bucket prefix, a folder).

    Subclasses set :attr:`scheme` and implement the object operations; keys are
    ``/``-separated and relative to the root.
    """

    #: URI scheme, e.g. ``"s3"``; ``"file"`` is the scheme of plain paths
    scheme: ClassVar[str] = ""

    def __init__(self, bucket: str, root: str, *, settings: Any = None):
        self.bucket = bucket
        self.root = root
        self.settings = settings

    @classmethod
    def claims(cls, uri: str) -> bool:
        """Whether ``uri`` is this store's although it does not start with
        ``scheme://`` (e.g. Azure's ``https://ACCOUNT.blob.core.windows.net/...``)."""
        return False

    @classmethod
    def parse(cls, uri: str) -> tuple[str, str]:
        """``uri`` -> ``(bucket, root)``; raise InvalidInputError when malformed."""
        raise NotImplementedError

    def describe(self) -> str:
        """Where this store is, for messages (never credentials)."""
        raise NotImplementedError

    def _key(self, key: str) -> str:
        """The object's full key under the root (``key`` checked by :func:`check_key`)."""
        check_key(key)
        return f"{self.root}/{key}" if self.root else key

    def _listing(self, prefix: str = "") -> tuple[str, str]:
        """``(the root's own prefix, stripped from listed names; the full prefix to
        list)`` for :meth:`list_keys` of object stores."""
        base = f"{self.root}/" if self.root else ""
        return base, base + (check_key(prefix.rstrip("/")) + "/" if prefix else "")

    def guard(self, what: str) -> ContextManager:
        """A context turning the scheme's own failures into typed storage errors."""
        return contextlib.nullcontext()

    def prepare(self, *, create_bucket: bool = False) -> None:
        """Make sure the location can be written (a missing bucket is refused unless
        ``create_bucket``)."""

    def stored_sha256(self, key: str) -> str | None:
        """The sha256 recorded for an object, ``None`` when it does not exist."""
        raise NotImplementedError

    def put_file(self, key: str, path: str, *, sha256: str, progress: Any = None) -> None:
        raise NotImplementedError

    def put_bytes(self, key: str, data: bytes, *, sha256: str,
                  content_type: str = "application/octet-stream") -> None:
        raise NotImplementedError

    def remove(self, key: str) -> None:
        """Remove an object (no error when it is absent)."""
        raise NotImplementedError

    def read_bytes(self, key: str) -> bytes | None:
        """An object's bytes, ``None`` when it does not exist."""
        raise NotImplementedError

    def fetch(self, key: str, dest: str) -> None:
        """Copy an object to the local file ``dest``."""
        raise NotImplementedError

    def list_keys(self, prefix: str = "") -> list[str]:
        """Every object key under the root (and under ``prefix``), sorted."""
        raise NotImplementedError

    def copy(self, src: str, dst: str, *, sha256: str) -> None:
        """Copy the object ``src`` to ``dst`` in this store. This default goes through a
        local file; stores with a server-side copy override it."""
        import tempfile

        with tempfile.TemporaryDirectory(prefix="kfp-interop-copy-") as tmp:
            path = os.path.join(tmp, "object")
            self.fetch(src, path)
            self.put_file(dst, path, sha256=sha256)


SCHEMES: Registry[type[Store]] = Registry(
    "storage scheme", "Add one with kfp_interop.storage.register_scheme(StoreClass).",
    entry_point_group="kfp_interop.storage_schemes")


def register_scheme(cls: type[Store], *, replace: bool = False) -> type[Store]:
    """Register a :class:`Store` subclass under its ``scheme``."""
    return SCHEMES.register(cls.scheme, cls, replace=replace)
