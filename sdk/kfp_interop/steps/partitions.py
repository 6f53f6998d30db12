"""A table as partitions for ``engine=dask``: a file, a folder (its .parquet/.csv files,
nested folders included, in name order) or a storage prefix (``s3://bucket/prefix``, and
every other registered scheme), one partition per file. Objects are read by the Dask
workers through kfp-interop's own storage clients (credentials from the workers'
environment, as every task's: the S3 Secret's variables), not through fsspec: one client
stack per cloud, with the routing, retries and typed errors the models already use
(docs/storage.md)."""

from __future__ import annotations

import functools
import io
import os

from kfp_interop.errors import DatasetError

__all__ = ["table_partitions", "is_table_folder", "table_listing_fingerprint"]

_SUFFIXES = (".parquet", ".csv")


def _frame(data, name: str):
    import pandas as pd

    if name.lower().endswith(".csv"):
        return pd.read_csv(data)
    return pd.read_parquet(data)


def _read_file(path: str):
    return _frame(path, path)


def _read_object(location: str, key: str):
    from kfp_interop.storage import open_store

    store = open_store(location)
    with store.guard(f"reading the partition {location}/{key}"):
        data = store.read_bytes(key)
    if data is None:
        raise DatasetError(f"The partition {location}/{key} disappeared while training.")
    return _frame(io.BytesIO(data), key)


def table_partitions(source: str) -> list:
    """The partitions of ``source``.

    Raises:
        DatasetError: nothing there, or no .parquet/.csv file under it (named).
    """
    from kfp_interop.training.dask_engine import Partition

    if "://" not in source:
        if os.path.isfile(source):
            return [Partition(source, functools.partial(_read_file, source))]
        if not os.path.isdir(source):
            raise DatasetError(f"{source!r} is neither a file nor a folder: give a .parquet "
                               "or .csv file, a folder of them, or a storage prefix "
                               "(s3://bucket/prefix).")
        files = sorted(os.path.join(root, f) for root, _, names in os.walk(source)
                       for f in names if f.lower().endswith(_SUFFIXES))
        if not files:
            raise DatasetError(f"The folder {source!r} holds no .parquet or .csv file.")
        return [Partition(f, functools.partial(_read_file, f)) for f in files]
    from kfp_interop.storage import open_store, parse_uri

    scheme, bucket, prefix = parse_uri(source.rstrip("/"))
    location = f"{scheme}://{bucket}"
    store = open_store(location)
    with store.guard(f"listing {source}"):
        keys = [k for k in store.list_keys(prefix) if k.lower().endswith(_SUFFIXES)]
    if not keys and prefix.lower().endswith(_SUFFIXES):  # the URI of one object
        keys = [prefix]
    if not keys:
        raise DatasetError(f"The prefix {source!r} holds no .parquet or .csv object: "
                           "check the bucket and prefix.")
    return [Partition(f"{location}/{k}", functools.partial(_read_object, location, k))
            for k in keys]


def is_table_folder(source: str) -> bool:
    """Whether ``source`` names a folder or a storage prefix (not one file or object)."""
    if "://" not in source:
        return os.path.isdir(source)
    return not source.rstrip("/").lower().endswith(_SUFFIXES)


def table_listing_fingerprint(source: str) -> str:
    """What a folder or prefix holds, cheaply, for KFP's cache key: ``listing:<sha256>``
    of each file's name, size and modification time (a folder), or each object's key
    and the sha256 kfp-interop stored with it (a prefix). An object without a stored
    sha256 (written by another tool) cannot be told from a changed one by its listing:
    the fingerprint then includes the time (and says ``listing-uncached:``), so the run
    is never served from the cache.
    """
    import hashlib
    import time

    lines, unknown = [], False
    if "://" not in source:
        for root, _, names in sorted(os.walk(source)):
            for name in sorted(names):
                if name.lower().endswith(_SUFFIXES):
                    path = os.path.join(root, name)
                    st = os.stat(path)
                    lines.append(f"{os.path.relpath(path, source)}\t{st.st_size}\t"
                                 f"{st.st_mtime_ns}")
    else:
        from kfp_interop.storage import open_store, parse_uri

        scheme, bucket, prefix = parse_uri(source.rstrip("/"))
        store = open_store(f"{scheme}://{bucket}")
        with store.guard(f"listing {source}"):
            for key in store.list_keys(prefix):
                if key.lower().endswith(_SUFFIXES):
                    stored = store.stored_sha256(key)
                    unknown = unknown or not stored
                    lines.append(f"{key}\t{stored or f'@{time.time_ns()}'}")
    if not lines:
        raise DatasetError(f"{source!r} holds no .parquet or .csv file.")
    kind = "listing-uncached:" if unknown else "listing:"
    return kind + hashlib.sha256("\n".join(lines).encode()).hexdigest()
