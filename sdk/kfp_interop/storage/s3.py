"""S3-compatible object storage through the ``minio`` SDK (any S3 server: AWS, MinIO,
SeaweedFS, Ceph).

Credentials come from the environment only, with the names KServe's storage initializer
reads from the same Secret: ``S3_ENDPOINT`` or ``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``S3_USE_HTTPS``, ``AWS_REGION``. On a
cluster, mount the Secret with ``kfp-kubernetes`` (see ``manifests/``); never pass keys as
pipeline parameters. Secrets never appear in messages or ``repr``. Each object's sha256
travels as object metadata (``x-amz-meta-sha256``). Single objects are atomic in S3 (a
multipart upload that dies leaves no object).
"""

from __future__ import annotations

import dataclasses
import io
import os
from typing import Any, ClassVar, Mapping

from kfp_interop.errors import (InvalidInputError, StorageAuthError, StorageError,
                                StorageUnavailableError)
from kfp_interop.storage.base import (INCOMPLETE_UPLOAD, Store, missing_container,
                                      register_scheme)

__all__ = ["S3Settings", "S3Store"]

_AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied",
               "InvalidToken", "ExpiredToken"}
_MISSING_CODES = ("NoSuchKey", "NoSuchObject")


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


class S3Store(Store):
    """Objects under ``s3://bucket/root``."""

    scheme: ClassVar[str] = "s3"

    def __init__(self, bucket: str, root: str, *, settings: S3Settings | None = None):
        super().__init__(bucket, root, settings=settings or S3Settings.from_env())
        self._client = self.settings.client()

    @classmethod
    def parse(cls, uri: str) -> tuple[str, str]:
        bucket, _, prefix = uri[len("s3://"):].partition("/")
        if not bucket:
            raise InvalidInputError(f"Storage URI {uri!r} names no bucket: use s3://bucket/prefix.")
        return bucket, prefix.strip("/")

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.root}".rstrip("/") + f" at {self.settings.endpoint}"

    def guard(self, what: str):
        return _s3_errors(self.settings, what)

    def prepare(self, *, create_bucket: bool = False) -> None:
        if not self._client.bucket_exists(self.bucket):
            if not create_bucket:
                raise missing_container(f"Bucket {self.bucket!r}",
                                        f"at {self.settings.endpoint}")
            self._client.make_bucket(self.bucket)

    @staticmethod
    def _unless_missing(call):
        """``call()``, or ``None`` when S3 says the object does not exist."""
        from minio.error import S3Error

        try:
            return call()
        except S3Error as e:
            if e.code in _MISSING_CODES:
                return None
            raise

    def stored_sha256(self, key: str) -> str | None:
        stat = self._unless_missing(lambda: self._client.stat_object(self.bucket, self._key(key)))
        if stat is None:
            return None
        stored = {k.lower(): v for k, v in (stat.metadata or {}).items()}
        return stored.get("x-amz-meta-sha256")

    def put_file(self, key: str, path: str, *, sha256: str, progress: Any = None) -> None:
        self._client.fput_object(self.bucket, self._key(key), path,
                                 metadata={"sha256": sha256}, progress=progress)

    def put_bytes(self, key: str, data: bytes, *, sha256: str,
                  content_type: str = "application/octet-stream") -> None:
        self._client.put_object(self.bucket, self._key(key), io.BytesIO(data), len(data),
                                content_type=content_type, metadata={"sha256": sha256})

    def remove(self, key: str) -> None:
        self._client.remove_object(self.bucket, self._key(key))

    def read_bytes(self, key: str) -> bytes | None:
        resp = self._unless_missing(lambda: self._client.get_object(self.bucket, self._key(key)))
        if resp is None:
            return None
        try:
            return resp.read()
        finally:
            resp.close()
            resp.release_conn()

    def fetch(self, key: str, dest: str) -> None:
        from kfp_interop.files import atomic_path

        with atomic_path(dest) as tmp:
            self._client.fget_object(self.bucket, self._key(key), tmp)

    def list_keys(self, prefix: str = "") -> list[str]:
        base, full = self._listing(prefix)
        return sorted(o.object_name[len(base):] for o in self._client.list_objects(
            self.bucket, prefix=full, recursive=True) if not o.is_dir)

    def copy(self, src: str, dst: str, *, sha256: str) -> None:
        """Server-side (CopyObject keeps the sha256 metadata); objects over S3's 5 GiB
        single-copy limit go through a local file."""
        from minio.commonconfig import CopySource

        stat = self._client.stat_object(self.bucket, self._key(src))
        if stat.size and stat.size > 5 * 1024 ** 3:
            return super().copy(src, dst, sha256=sha256)
        self._client.copy_object(self.bucket, self._key(dst),
                                 CopySource(self.bucket, self._key(src)))


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
                    f"{what}: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.") from e
            if e.code == "NoSuchBucket":
                raise missing_container(f"Bucket {e.bucket_name!r}",
                                        f"at {settings.endpoint}") from e
            raise StorageError(f"S3 error {e.code} while {what}: {e.message}") from e
        except (urllib3.exceptions.HTTPError, OSError) as e:
            if isinstance(e, StorageError):
                raise
            raise StorageUnavailableError(
                f"Cannot reach S3 at {settings.endpoint} while {what} "
                f"({type(e).__name__}: {str(e)[:200]}). " + INCOMPLETE_UPLOAD) from e

    return guard()


register_scheme(S3Store)
