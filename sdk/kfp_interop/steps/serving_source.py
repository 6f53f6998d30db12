"""A model repository at a storage URI, for the server (:mod:`kfp_interop.serving`
stays below storage in the layer contract and takes it as a
:class:`~kfp_interop.serving.repository.RemoteSource`)."""

from __future__ import annotations

__all__ = ["StoredRepository", "remote_source"]


class StoredRepository:
    """The model folders under ``uri`` (any storage scheme that can list)."""

    def __init__(self, uri: str):
        self.uri = uri.rstrip("/")

    def names(self) -> list[str]:
        from kfp_interop.storage import open_store

        store = open_store(self.uri)
        with store.guard(f"listing {self.uri}"):
            keys = store.list_keys()
        return sorted({k.split("/", 1)[0] for k in keys
                       if k.endswith("/config.pbtxt") and k.count("/") == 1})

    def fetch(self, name: str, dest: str) -> None:
        """Download ``<uri>/<name>`` into ``dest``, every object checked against the
        manifest (``dest`` unchanged when anything fails)."""
        from kfp_interop.storage import download

        download(f"{self.uri}/{name}", dest)


def remote_source(source: str) -> StoredRepository | None:
    """A :class:`StoredRepository` for a storage URI, ``None`` for a path."""
    return StoredRepository(source) if "://" in (source or "") else None
