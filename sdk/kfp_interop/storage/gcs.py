"""Google Cloud Storage through ``google-cloud-storage`` (``gs://bucket/prefix``, the form
KServe's storage initializer reads).

Credentials as Google's own clients and KServe take them: a service-account JSON named by
``GOOGLE_APPLICATION_CREDENTIALS``; in a pipeline task, the ``kfp-interop-gcs`` Secret's
``key.json`` mounted where ``KFP_INTEROP_GCS_CREDENTIALS`` says, when it is there (see
``manifests/``); else the environment's default credentials (workload identity,
``gcloud auth application-default login``). ``STORAGE_EMULATOR_HOST`` points the client
at an emulator (``gcp-storage-emulator``, fake-gcs-server) with anonymous credentials, as
the client library does. The project comes from ``GOOGLE_CLOUD_PROJECT`` or the
credentials. Each object's sha256 travels as custom metadata (``x-goog-meta-sha256``). A
GCS object appears whole or not at all: an upload that dies leaves the previous
generation readable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Any, ClassVar, Mapping

from kfp_interop.errors import (InvalidInputError, StorageAuthError, StorageError,
                                StorageUnavailableError)
from kfp_interop.storage.base import (INCOMPLETE_UPLOAD, Store, missing_container,
                                      register_scheme)

__all__ = ["GCSSettings", "GCSStore"]


@dataclasses.dataclass(frozen=True)
class GCSSettings:
    """Where GCS is (the cloud, or an emulator) and whose credentials to use (a file
    name, never its content)."""

    emulator: str = ""
    credentials_file: str = ""
    project: str = ""
    timeout: float = 20.0
    #: how long transient failures are retried (the library's default is 120 s)
    retry_for: float = 8.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "GCSSettings":
        env = os.environ if env is None else env
        emulator = env.get("STORAGE_EMULATOR_HOST", "").rstrip("/")
        if emulator and "://" not in emulator:
            emulator = "http://" + emulator
        # the pipeline mounts the kfp-interop-gcs Secret's key there when it exists
        mounted = env.get("KFP_INTEROP_GCS_CREDENTIALS", "")
        key_file = env.get("GOOGLE_APPLICATION_CREDENTIALS", "") or (
            mounted if mounted and os.path.isfile(mounted) else "")
        return cls(emulator=emulator, credentials_file=key_file,
                   project=env.get("GOOGLE_CLOUD_PROJECT") or env.get("GCLOUD_PROJECT") or "")

    def where(self) -> str:
        return self.emulator or "storage.googleapis.com"

    def client(self):
        from google.cloud import storage

        if self.emulator:
            from google.auth.credentials import AnonymousCredentials

            return storage.Client(project=self.project or "kfp-interop",
                                  credentials=AnonymousCredentials(),
                                  client_options={"api_endpoint": self.emulator})
        if self.credentials_file:
            if not os.path.isfile(self.credentials_file):
                raise StorageAuthError(
                    f"GOOGLE_APPLICATION_CREDENTIALS names {self.credentials_file!r}, which is "
                    "not a file: mount the service-account JSON there (the kfp-interop-gcs "
                    "Secret on a cluster).")
            try:
                return storage.Client.from_service_account_json(
                    self.credentials_file, project=self.project or None)
            except ValueError as e:
                raise StorageAuthError(
                    f"{self.credentials_file!r} is not a service-account JSON key "
                    f"({type(e).__name__}).") from None
        try:
            return storage.Client(project=self.project or None)
        except Exception as e:  # noqa: BLE001 - google.auth's DefaultCredentialsError
            raise StorageAuthError(
                "No Google Cloud credentials: set GOOGLE_APPLICATION_CREDENTIALS to a "
                "service-account JSON (the kfp-interop-gcs Secret on a cluster) or run "
                f"where default credentials exist ({type(e).__name__}).") from None


class GCSStore(Store):
    """Objects under ``gs://bucket/root``."""

    scheme: ClassVar[str] = "gs"

    def __init__(self, bucket: str, root: str, *, settings: GCSSettings | None = None):
        super().__init__(bucket, root, settings=settings or GCSSettings.from_env())
        self._client = None
        from google.cloud.storage.retry import DEFAULT_RETRY

        # the library retries transient failures for up to 120 s by default: bounded by
        # the settings, so an unreachable endpoint is said within seconds
        self._call = {"timeout": self.settings.timeout,
                      "retry": DEFAULT_RETRY.with_timeout(self.settings.retry_for)}

    @property
    def client(self):
        if self._client is None:
            with self.guard("signing in"):
                self._client = self.settings.client()
        return self._client

    @classmethod
    def parse(cls, uri: str) -> tuple[str, str]:
        bucket, _, prefix = uri[len("gs://"):].partition("/")
        if not bucket or "/" in bucket:
            raise InvalidInputError(
                f"Storage URI {uri!r} names no bucket: use gs://bucket/prefix.")
        return bucket, prefix.strip("/")

    def describe(self) -> str:
        return f"gs://{self.bucket}/{self.root}".rstrip("/") + f" at {self.settings.where()}"

    def _blob(self, key: str):
        return self.client.bucket(self.bucket).blob(self._key(key))

    def guard(self, what: str):
        return _gcs_errors(self, what)

    def prepare(self, *, create_bucket: bool = False) -> None:
        with self.guard("checking the bucket"):
            if self.client.lookup_bucket(self.bucket, **self._call) is None:
                if not create_bucket:
                    raise missing_container(f"Bucket {self.bucket!r}",
                                            f"at {self.settings.where()}")
                self.client.create_bucket(self.bucket, **self._call)

    def stored_sha256(self, key: str) -> str | None:
        blob = self.client.bucket(self.bucket).get_blob(self._key(key),
                                                        **self._call)
        return None if blob is None else (blob.metadata or {}).get("sha256")

    def put_file(self, key: str, path: str, *, sha256: str, progress: Any = None) -> None:
        blob = self._blob(key)
        blob.metadata = {"sha256": sha256}
        blob.upload_from_filename(path, **self._call)
        if progress is not None:
            progress.update(os.path.getsize(path))

    def put_bytes(self, key: str, data: bytes, *, sha256: str,
                  content_type: str = "application/octet-stream") -> None:
        blob = self._blob(key)
        blob.metadata = {"sha256": sha256}
        blob.upload_from_string(data, content_type=content_type,
                                **self._call)

    def remove(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        with contextlib.suppress(NotFound):
            self._blob(key).delete(**self._call)

    def read_bytes(self, key: str) -> bytes | None:
        from google.api_core.exceptions import NotFound

        try:
            return self._blob(key).download_as_bytes(**self._call)
        except NotFound:
            return None

    def fetch(self, key: str, dest: str) -> None:
        from google.api_core.exceptions import NotFound

        from kfp_interop.files import atomic_path

        try:
            with atomic_path(dest) as tmp:
                self._blob(key).download_to_filename(tmp, **self._call)
        except NotFound:
            if self.client.lookup_bucket(self.bucket, **self._call) is None:
                raise
            raise StorageError(f"No object {self._key(key)!r} in gs://{self.bucket} at "
                               f"{self.settings.where()} (NoSuchKey).") from None

    def copy(self, src: str, dst: str, *, sha256: str) -> None:
        """Server-side, within the bucket (the metadata, sha256 included, goes along)."""
        bucket = self.client.bucket(self.bucket)
        bucket.copy_blob(self._blob(src), bucket, self._key(dst), **self._call)

    def list_keys(self, prefix: str = "") -> list[str]:
        base, full = self._listing(prefix)
        return sorted(b.name[len(base):] for b in self.client.list_blobs(
            self.bucket, prefix=full, **self._call)
            if not b.name.endswith("/"))


@contextlib.contextmanager
def _gcs_errors(store: GCSStore, what: str):
    """google-cloud-storage's failures as typed storage errors (no credentials echoed)."""
    from google.api_core import exceptions as gexc

    where = store.settings.where()
    try:
        yield
    except StorageError:
        raise
    except (gexc.Unauthorized, gexc.Forbidden) as e:
        raise StorageAuthError(
            f"GCS at {where} refused the credentials ({e.code}) while {what}: check the "
            "service account (GOOGLE_APPLICATION_CREDENTIALS) and its roles on bucket "
            f"{store.bucket!r}.") from None
    except gexc.NotFound:
        raise missing_container(f"Bucket {store.bucket!r}",
                                f"at {where} (while {what})") from None
    except gexc.GoogleAPICallError as e:
        raise StorageError(f"GCS error {e.code} while {what}: {str(e)[:200]}") from None
    except Exception as e:  # requests / google.auth transport errors, retries exhausted
        if _unreachable(e):
            raise StorageUnavailableError(
                f"Cannot reach GCS at {where} while {what} ({type(e).__name__}). "
                + INCOMPLETE_UPLOAD) from None
        raise


def _unreachable(e: BaseException) -> bool:
    import requests
    from google.api_core.exceptions import RetryError

    try:
        from google.auth.exceptions import TransportError
    except ImportError:  # pragma: no cover
        TransportError = OSError  # noqa: N806
    return isinstance(e, (requests.ConnectionError, requests.Timeout, TransportError,
                          RetryError, ConnectionError, TimeoutError))


register_scheme(GCSStore)
