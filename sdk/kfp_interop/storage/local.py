"""Plain folders as storage (the ``file`` scheme: any path without ``scheme://``), for
local runs and shared file systems. Objects are files; their sha256 is computed."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from kfp_interop.files import atomic_copy, atomic_write, sha256_file
from kfp_interop.errors import InvalidInputError
from kfp_interop.storage.base import Store, check_key, register_scheme

__all__ = ["FolderStore"]


class FolderStore(Store):
    scheme: ClassVar[str] = "file"

    @classmethod
    def parse(cls, uri: str) -> tuple[str, str]:
        return "", os.path.abspath(uri)

    def describe(self) -> str:
        return self.root

    def _path(self, key: str) -> str:
        """The file of ``key``, which must resolve inside the root (symlinks included).

        Raises:
            InvalidInputError: the key, or a symlink on its way, leads outside the root.
        """
        path = os.path.join(self.root, check_key(key))
        root = os.path.realpath(self.root)
        if os.path.commonpath([root, os.path.realpath(path)]) != root:
            raise InvalidInputError(f"Object key {key!r} resolves outside {self.root!r} "
                                    "(through a symlink): refused.")
        return path

    def stored_sha256(self, key: str) -> str | None:
        path = self._path(key)
        return sha256_file(path) if os.path.isfile(path) else None

    def put_file(self, key: str, path: str, *, sha256: str, progress: Any = None) -> None:
        atomic_copy(path, self._path(key))

    def put_bytes(self, key: str, data: bytes, *, sha256: str,
                  content_type: str = "application/octet-stream") -> None:
        atomic_write(self._path(key), data)

    def remove(self, key: str) -> None:
        try:
            os.remove(self._path(key))
        except FileNotFoundError:
            pass

    def read_bytes(self, key: str) -> bytes | None:
        try:
            with open(self._path(key), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def fetch(self, key: str, dest: str) -> None:
        atomic_copy(self._path(key), dest)

    def list_keys(self, prefix: str = "") -> list[str]:
        """Files under the root; symlinks are not followed out of it."""
        top = self._path(prefix.rstrip("/")) if prefix else self.root
        keys = []
        for folder, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
            for name in files:
                rel = os.path.relpath(os.path.join(folder, name), self.root)
                keys.append(rel.replace(os.sep, "/"))
        return sorted(keys)


register_scheme(FolderStore)
