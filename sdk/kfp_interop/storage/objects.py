"""Files at a storage URI, and data sets read from them (:func:`load_source`): a data set ``s3://bucket/path/rows.csv``, a model or a sample
``https://host/m/model.onnx#sha256=...`` (any registered scheme), fetched into a private
temporary folder for the length of a step, so the layers below read a local file (they
stay below storage in the layer contract)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any, Iterator

from kfp_interop.errors import InvalidInputError

__all__ = ["dataset_file", "is_uri", "load_source", "object_file", "local_files"]

_SUFFIXES = (".csv", ".parquet")


def is_uri(dataset: str) -> bool:
    return "://" in (dataset or "")


@contextlib.contextmanager
def object_file(uri: str, *, what: str, suffixes: tuple[str, ...] = (),
                example: str = "") -> Iterator[str]:
    """``uri`` itself when it is a path (or a bundled data set's name); for a URI of any
    registered scheme, a local copy of the object under its own file name (credentials
    from the scheme's environment, e.g. the S3 Secret's; a ``#sha256=`` pin checked),
    removed when the block ends.

    Raises:
        InvalidInputError: a URI without an object key, or not ending in ``suffixes``.
        StorageError (and subclasses): the object does not exist, the credentials are
            refused, the endpoint cannot be reached, or the pinned sha256 differs.
    """
    if not is_uri(uri):
        yield uri
        return
    from kfp_interop.storage import open_store, parse_uri
    from kfp_interop.storage.base import check_key

    scheme, bucket, key = parse_uri(uri.strip())
    if not bucket or not key or suffixes and not key.lower().endswith(suffixes):
        kinds = " or ".join(suffixes) or "one"
        raise InvalidInputError(f"{what.capitalize()} {uri!r}: give the URI of one {kinds} "
                                f"object" + (f", e.g. {example}." if example else "."))
    check_key(key)  # every segment: no '..', '.', empty, absolute or backslash
    store = open_store(f"{scheme}://{bucket}")
    with tempfile.TemporaryDirectory(prefix="kfp-interop-object-") as tmp:
        local = os.path.join(tmp, os.path.basename(key))
        with store.guard(f"reading the {what} {uri}"):  # a missing object: NoSuchKey
            store.fetch(key, local)
        yield local


@contextlib.contextmanager
def local_files(**uris: tuple[str, str, tuple[str, ...]]) -> Iterator[dict[str, str]]:
    """``{name: local path}`` for ``name=(uri or path or "", what, suffixes)``; empty
    values stay empty. The copies live until the block ends."""
    with contextlib.ExitStack() as own:
        yield {name: own.enter_context(object_file(value, what=what, suffixes=suffixes))
               if value else value for name, (value, what, suffixes) in uris.items()}


def dataset_file(dataset: str):
    """:func:`object_file` for a data set (one .csv or .parquet object)."""
    return object_file(dataset, what="data set", suffixes=_SUFFIXES,
                       example="s3://bucket/data/rows.csv")


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
