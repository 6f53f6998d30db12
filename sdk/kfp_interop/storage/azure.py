"""Azure Blob Storage through ``azure-storage-blob``, in the URI form KServe's storage
initializer reads, ``https://ACCOUNT.blob.core.windows.net/container/prefix``, and the
short ``az://ACCOUNT/container/prefix``.

Credentials as Azure's own tools and KServe take them, from the environment (on a
cluster: the ``kfp-interop-azure`` Secret, see ``manifests/``):
``AZURE_STORAGE_CONNECTION_STRING`` (used for the account it names: its
``BlobEndpoint`` decides where requests go, so the cloud URI of Azurite's
``devstoreaccount1`` reaches the emulator), else ``AZURE_STORAGE_ACCESS_KEY`` (also
``AZURE_STORAGE_KEY``) or ``AZURE_STORAGE_SAS_TOKEN`` for the URI's account, else
anonymous access (a public container). Each blob's sha256 travels as blob metadata.
A block blob appears whole when its block list is committed: an upload that dies leaves
the previous version readable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from typing import Any, ClassVar, Mapping

from kfp_interop.errors import (InvalidInputError, StorageAuthError, StorageError,
                                StorageUnavailableError)
from kfp_interop.storage.base import (INCOMPLETE_UPLOAD, Store, missing_container,
                                      register_scheme)

__all__ = ["AzureSettings", "AzureBlobStore"]

_CLOUD = re.compile(r"https://(?P<account>[a-z0-9]{3,24})\.blob\.core\.windows\.net"
                    r"(?P<rest>/.*)?")
_CONTAINER = re.compile(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]")


def _connection_fields(text: str) -> dict[str, str]:
    fields = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            fields[key.strip().lower()] = value.strip()
    return fields


@dataclasses.dataclass(frozen=True)
class AzureSettings:
    """How to reach Azure Blob Storage (secrets never in ``repr``)."""

    connection_string: str = dataclasses.field(repr=False, default="")
    account_key: str = dataclasses.field(repr=False, default="")
    sas_token: str = dataclasses.field(repr=False, default="")
    timeout: float = 20.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "AzureSettings":
        env = os.environ if env is None else env
        return cls(connection_string=env.get("AZURE_STORAGE_CONNECTION_STRING", ""),
                   account_key=env.get("AZURE_STORAGE_ACCESS_KEY") or
                   env.get("AZURE_STORAGE_KEY", ""),
                   sas_token=env.get("AZURE_STORAGE_SAS_TOKEN", ""))

    def endpoint(self, account: str) -> str:
        """Where ``account``'s blobs are: the connection string's BlobEndpoint when it
        names this account, else the cloud's."""
        fields = _connection_fields(self.connection_string)
        if fields.get("accountname") == account and fields.get("blobendpoint"):
            return fields["blobendpoint"].rstrip("/")
        return f"https://{account}.blob.core.windows.net"

    def service(self, account: str):
        from azure.storage.blob import BlobServiceClient

        fields = _connection_fields(self.connection_string)
        from azure.storage.blob import ExponentialRetry

        # the library's default waits 15 s, then 45 s between tries: an unreachable
        # endpoint would take a minute to say so; two quick retries cover a blip
        kwargs = {"connection_timeout": 5, "read_timeout": self.timeout,
                  "retry_policy": ExponentialRetry(initial_backoff=1, increment_base=2,
                                                   retry_total=2)}
        if fields.get("accountname") == account:
            return BlobServiceClient.from_connection_string(self.connection_string, **kwargs)
        credential: Any = None
        if self.account_key:
            credential = {"account_name": account, "account_key": self.account_key}
        elif self.sas_token:
            credential = self.sas_token.lstrip("?")
        return BlobServiceClient(self.endpoint(account), credential=credential, **kwargs)


class AzureBlobStore(Store):
    """Blobs under ``https://ACCOUNT.blob.core.windows.net/container/root``; ``bucket``
    is ``ACCOUNT/container``."""

    scheme: ClassVar[str] = "az"

    def __init__(self, bucket: str, root: str, *, settings: AzureSettings | None = None):
        super().__init__(bucket, root, settings=settings or AzureSettings.from_env())
        self.account, _, self.container = bucket.partition("/")
        self._client = None

    @classmethod
    def claims(cls, uri: str) -> bool:
        return uri.startswith("az://") or bool(_CLOUD.fullmatch(uri.split("?", 1)[0]))

    @classmethod
    def parse(cls, uri: str) -> tuple[str, str]:
        if "?" in uri:
            raise InvalidInputError(
                f"Storage URI {uri.split('?', 1)[0]!r} carries a query (a SAS token?): put "
                "the token in AZURE_STORAGE_SAS_TOKEN, never in a URI or parameter.")
        cloud = _CLOUD.fullmatch(uri)
        if cloud:
            account, rest = cloud.group("account"), (cloud.group("rest") or "")
        elif uri.startswith("az://"):
            account, _, rest = uri[len("az://"):].partition("/")
            rest = "/" + rest
        else:
            raise InvalidInputError(
                f"Storage URI {uri!r} is not Azure Blob Storage: use "
                "https://ACCOUNT.blob.core.windows.net/container/prefix (or "
                "az://ACCOUNT/container/prefix).")
        container, _, prefix = rest.lstrip("/").partition("/")
        if not re.fullmatch(r"[a-z0-9]{3,24}", account or ""):
            raise InvalidInputError(f"Storage URI {uri!r}: {account!r} is not a storage "
                                    "account name (3-24 lowercase letters and digits).")
        if not _CONTAINER.fullmatch(container):
            raise InvalidInputError(
                f"Storage URI {uri!r} names no valid container ({container!r}): use "
                "https://ACCOUNT.blob.core.windows.net/container/prefix (3-63 lowercase "
                "letters, digits and single hyphens).")
        return f"{account}/{container}", prefix.strip("/")

    def describe(self) -> str:
        return (f"https://{self.account}.blob.core.windows.net/{self.container}/"
                f"{self.root}".rstrip("/") + f" at {self.settings.endpoint(self.account)}")

    @property
    def client(self):
        if self._client is None:
            self._client = self.settings.service(self.account).get_container_client(
                self.container)
        return self._client

    def guard(self, what: str):
        return _azure_errors(self, what)

    def prepare(self, *, create_bucket: bool = False) -> None:
        with self.guard("checking the container"):
            if not self.client.exists():
                if not create_bucket:
                    raise missing_container(f"Container {self.container!r}",
                                            f"in account {self.account!r}")
                self.client.create_container()

    def stored_sha256(self, key: str) -> str | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            props = self.client.get_blob_client(self._key(key)).get_blob_properties()
        except ResourceNotFoundError as e:
            if getattr(e, "error_code", "") == "ContainerNotFound":
                raise
            return None
        return (props.metadata or {}).get("sha256")

    def put_file(self, key: str, path: str, *, sha256: str, progress: Any = None) -> None:
        with open(path, "rb") as f:
            self.client.upload_blob(self._key(key), f, overwrite=True,
                                    metadata={"sha256": sha256}, max_concurrency=2)
        if progress is not None:
            progress.update(os.path.getsize(path))

    def put_bytes(self, key: str, data: bytes, *, sha256: str,
                  content_type: str = "application/octet-stream") -> None:
        from azure.storage.blob import ContentSettings

        self.client.upload_blob(self._key(key), data, overwrite=True,
                                metadata={"sha256": sha256},
                                content_settings=ContentSettings(content_type=content_type))

    def remove(self, key: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with contextlib.suppress(ResourceNotFoundError):
            self.client.delete_blob(self._key(key))

    def read_bytes(self, key: str) -> bytes | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.client.download_blob(self._key(key)).readall()
        except ResourceNotFoundError as e:
            if getattr(e, "error_code", "") == "ContainerNotFound":
                raise
            return None

    def fetch(self, key: str, dest: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        from kfp_interop.files import atomic_path

        try:
            with atomic_path(dest) as tmp, open(tmp, "wb") as f:
                self.client.download_blob(self._key(key)).readinto(f)
        except ResourceNotFoundError as e:
            if getattr(e, "error_code", "") == "ContainerNotFound":
                raise
            raise StorageError(f"No blob {self._key(key)!r} in container "
                               f"{self.container!r} of account {self.account!r} "
                               "(NoSuchKey).") from None

    def list_keys(self, prefix: str = "") -> list[str]:
        base, full = self._listing(prefix)
        return sorted(b.name[len(base):] for b in self.client.list_blobs(
            name_starts_with=full or None))

    # copy: Store's, through a local file. Azure's server-side Copy Blob authorizes its
    # source separately (a SAS-only credential would have to be put into the source
    # URL) and may finish asynchronously; a kept copy happens once per replaced object.


@contextlib.contextmanager
def _azure_errors(store: AzureBlobStore, what: str):
    """azure-storage-blob's failures as typed storage errors (no key or token echoed)."""
    from azure.core import exceptions as aexc

    where = store.settings.endpoint(store.account)
    try:
        yield
    except StorageError:
        raise
    except aexc.ClientAuthenticationError as e:
        raise StorageAuthError(
            f"Azure Blob Storage at {where} refused the credentials "
            f"({getattr(e, 'error_code', None) or e.status_code}) while {what}: check "
            "AZURE_STORAGE_CONNECTION_STRING / AZURE_STORAGE_ACCESS_KEY / "
            "AZURE_STORAGE_SAS_TOKEN.") from None
    except aexc.ResourceNotFoundError as e:
        if getattr(e, "error_code", "") == "ContainerNotFound":
            raise missing_container(f"Container {store.container!r}",
                                    f"in account {store.account!r} at {where}") from None
        raise StorageError(f"Azure Blob Storage: not found while {what} "
                           f"({getattr(e, 'error_code', '')}).") from None
    except (aexc.ServiceRequestError, aexc.ServiceResponseError) as e:
        raise StorageUnavailableError(
            f"Cannot reach Azure Blob Storage at {where} while {what} "
            f"({type(e).__name__}). " + INCOMPLETE_UPLOAD) from None
    except aexc.HttpResponseError as e:
        if e.status_code in (401, 403):
            raise StorageAuthError(
                f"Azure Blob Storage at {where} refused the request ({e.status_code}, "
                f"{getattr(e, 'error_code', '')}) while {what}: check the credentials and "
                "their rights on the container.") from None
        raise StorageError(f"Azure Blob Storage error {e.status_code} "
                           f"({getattr(e, 'error_code', '')}) while {what}.") from None


register_scheme(AzureBlobStore)
