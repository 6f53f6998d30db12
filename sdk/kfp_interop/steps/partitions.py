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

__all__ = ["table_partitions"]

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
