"""Objects at a web address, read-only: ``https://host/path`` (and plain ``http://``),
as KServe's storage initializer also reads them. For data sets (and anything else that
only reads one object); uploads, listing and validate-repo need a store that can list
and write, and refuse these URIs by name.

Pinned content: a URI may end in ``#sha256=<64 hex digits>`` (pip's form); the object
is then refused, and nothing kept, when its bytes hash otherwise. Redirects are followed,
never from https to http; bodies above
``KFP_INTEROP_HTTP_MAX_MB`` (default 2048) are refused. Azure Blob Storage URIs
(``https://ACCOUNT.blob.core.windows.net/...``) belong to :mod:`.azure`, which claims
them first.
"""

from __future__ import annotations

import os
import re
from typing import Any, ClassVar

from kfp_interop.errors import (InvalidInputError, StorageError, StorageIntegrityError,
                                StorageUnavailableError, UnsupportedOperationError)
from kfp_interop.storage.base import Store, check_key, register_scheme

__all__ = ["HttpsStore", "HttpStore"]

_PIN = re.compile(r"sha256=([0-9a-f]{64})")
_CHUNK = 1 << 20


class HttpsStore(Store):
    """Objects under ``https://host/root``, read-only; ``bucket`` is ``host[:port]``, with
    the URI's ``#sha256=...`` pin after it (so the pin stays with the store whatever key
    is read through it)."""

    scheme: ClassVar[str] = "https"

    @classmethod
    def parse(cls, uri: str) -> tuple[str, str]:
        rest = uri[len(f"{cls.scheme}://"):]
        rest, _, fragment = rest.partition("#")
        if fragment and not _PIN.fullmatch(fragment):
            raise InvalidInputError(f"URI {uri!r}: the only fragment taken is "
                                    "#sha256=<64 lowercase hex digits> (the expected content).")
        if "?" in rest:
            raise InvalidInputError(f"URI {uri.split('?', 1)[0]!r} carries a query: give the "
                                    "object's plain address (tokens do not belong in URIs).")
        host, _, path = rest.partition("/")
        if not re.fullmatch(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?", host or "") or "@" in rest:
            raise InvalidInputError(f"URI {uri!r} names no host (or carries user info, "
                                    f"which is refused): use {cls.scheme}://host/path.")
        return host + (f"#{fragment}" if fragment else ""), path.strip("/")

    def __init__(self, bucket: str, root: str, *, settings: Any = None):
        bucket, _, fragment = bucket.partition("#")
        super().__init__(bucket, root, settings=settings)
        pin = _PIN.fullmatch(fragment) if fragment else None
        self.expected_sha256 = pin.group(1) if pin else ""

    def describe(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.root}".rstrip("/")

    def _url(self, key: str) -> str:
        from urllib.parse import quote

        check_key(key)
        path = f"{self.root}/{key}" if self.root else key
        return f"{self.scheme}://{self.bucket}/{quote(path)}"

    def _read_only(self, what: str):
        return UnsupportedOperationError(
            f"{self.scheme}:// is read-only here ({what} {self.describe()}): store models on "
            "s3://, gs://, Azure Blob Storage or a folder (docs/storage.md).")

    def prepare(self, *, create_bucket: bool = False) -> None:
        raise self._read_only("writing to")

    def put_file(self, key: str, path: str, *, sha256: str, progress: Any = None) -> None:
        raise self._read_only("writing to")

    def put_bytes(self, key: str, data: bytes, *, sha256: str,
                  content_type: str = "application/octet-stream") -> None:
        raise self._read_only("writing to")

    def remove(self, key: str) -> None:
        raise self._read_only("removing from")

    def list_keys(self, prefix: str = "") -> list[str]:
        raise self._read_only("listing")

    def stored_sha256(self, key: str) -> str | None:
        return self.expected_sha256 or None

    def _open(self, key: str):
        import urllib.error
        import urllib.request

        url = self._url(key)
        scheme = self.scheme

        class NoDowngrade(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, req, fp, code, msg, headers, newurl):
                allowed = ("https://",) if scheme == "https" else ("http://", "https://")
                if not newurl.startswith(allowed):
                    raise StorageError(f"{url} redirects to {newurl.split('?')[0]!r}: a "
                                       "redirect away from https is refused.")
                return super().redirect_request(req, fp, code, msg, headers, newurl)

        opener = urllib.request.build_opener(NoDowngrade)
        try:
            return opener.open(urllib.request.Request(url, headers={
                "User-Agent": "kfp-interop"}), timeout=20)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                raise StorageError(f"No object at {url} (HTTP 404, NoSuchKey).") from None
            raise StorageError(f"{url} answered HTTP {e.code}.") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise StorageUnavailableError(f"Cannot reach {url} ({type(reason).__name__}: "
                                          f"{str(reason)[:120]}).") from None

    def read_bytes(self, key: str) -> bytes | None:
        import hashlib

        with self._open(key) as resp:
            data = resp.read(_limit() + 1)
        if len(data) > _limit():
            raise StorageError(f"{self._url(key)} is larger than KFP_INTEROP_HTTP_MAX_MB.")
        self._check(hashlib.sha256(data).hexdigest(), key)
        return data

    def fetch(self, key: str, dest: str) -> None:
        import hashlib

        from kfp_interop.files import atomic_path

        digest = hashlib.sha256()
        with atomic_path(dest) as tmp, self._open(key) as resp, open(tmp, "wb") as out:
            size = 0
            while chunk := resp.read(_CHUNK):
                size += len(chunk)
                if size > _limit():
                    raise StorageError(f"{self._url(key)} is larger than "
                                       "KFP_INTEROP_HTTP_MAX_MB; nothing was kept.")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            self._check(digest.hexdigest(), key)  # before the file takes its name

    def _check(self, actual: str, key: str) -> None:
        if self.expected_sha256 and actual != self.expected_sha256:
            raise StorageIntegrityError(
                f"{self._url(key)} has sha256 {actual}, not the {self.expected_sha256} its "
                "URI pins: refused, nothing was kept.")


class HttpStore(HttpsStore):
    """Plain ``http://`` (a server on your network or machine), read-only."""

    scheme: ClassVar[str] = "http"


def _limit() -> int:
    return int(float(os.environ.get("KFP_INTEROP_HTTP_MAX_MB", "2048")) * 1024 * 1024)


register_scheme(HttpsStore)
register_scheme(HttpStore)
