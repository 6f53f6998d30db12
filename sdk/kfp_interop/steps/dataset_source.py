"""Data sets at a storage URI: ``s3://bucket/path/rows.csv`` (or any registered scheme)
fetched into a private temporary folder for the length of a step, so the data layer
reads a local file (it stays below storage in the layer contract)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any, Iterator

from kfp_interop.errors import InvalidInputError

__all__ = ["dataset_file", "is_uri", "load_source"]

_SUFFIXES = (".csv", ".parquet")


def is_uri(dataset: str) -> bool:
    return "://" in (dataset or "")


@contextlib.contextmanager
def dataset_file(dataset: str) -> Iterator[str]:
    """``dataset`` itself for a bundled name or a path; for a URI, a local copy of the
    object (credentials from the scheme's environment, e.g. the S3 Secret's), removed
    when the block ends.

    Raises:
        InvalidInputError: a URI without an object key, or not ending in .csv/.parquet.
        StorageError (and subclasses): the object does not exist, the credentials are
            refused, or the endpoint cannot be reached.
    """
    if not is_uri(dataset):
        yield dataset
        return
    from kfp_interop.storage import open_store, parse_uri
    from kfp_interop.storage.base import check_key

    scheme, bucket, key = parse_uri(dataset.strip())
    if not bucket or not key.lower().endswith(_SUFFIXES):
        raise InvalidInputError(f"Data set {dataset!r}: give the URI of one .csv or .parquet "
                                "object, e.g. s3://bucket/data/rows.csv.")
    check_key(key)  # every segment: no '..', '.', empty, absolute or backslash
    store = open_store(f"{scheme}://{bucket}")
    with tempfile.TemporaryDirectory(prefix="kfp-interop-data-") as tmp:
        local = os.path.join(tmp, os.path.basename(key))
        with store.guard(f"reading the data set {dataset}"):  # a missing object: NoSuchKey
            store.fetch(key, local)
        yield local


def load_source(dataset: str, *, source_fingerprint: str = "", **options: Any):
    """:func:`kfp_interop.data.load_dataset` on ``dataset`` (a bundled name, a path or a
    URI: :func:`dataset_file`), refused when it is no longer what ``source_fingerprint``
    says; the data's ``source`` names ``dataset`` itself, not a local copy.

    Raises:
        DatasetError: the content changed since the fingerprint; what load_dataset raises.
    """
    import dataclasses

    from kfp_interop.data import check_source_fingerprint, load_dataset

    with dataset_file(dataset) as local:
        check_source_fingerprint(local, source_fingerprint)
        data = load_dataset(local, **options)
    return dataclasses.replace(data, source=dataset)
