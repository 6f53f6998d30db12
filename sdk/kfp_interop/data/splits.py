"""Seeded, stratified splits, and splits on disk: Parquet files that describe themselves
(schema, classes and fingerprint in the file's key-value metadata), so no value changes
type on the way between pipeline steps (KFP artifact metadata turns ints into floats).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from kfp_interop.constants import DEFAULT_SEED, DEFAULT_TEST_SIZE
from kfp_interop.data.tabular import TabularData
from kfp_interop.errors import DatasetError, InvalidInputError
from kfp_interop.files import atomic_writer

__all__ = ["SPLIT_METADATA_KEY", "split_dataset", "save_split", "split_metadata",
           "load_split", "read_split_metadata", "read_features"]


def split_dataset(data: TabularData, *, test_size: float = DEFAULT_TEST_SIZE,
                  seed: int = DEFAULT_SEED) -> tuple[TabularData, TabularData]:
    """Seeded train/test split, stratified by class for classification.

    Raises:
        DatasetError: too few rows (or too few per class) to split.
    """
    import numpy as np
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_size < 1.0:
        raise InvalidInputError(f"test_size={test_size!r} must be between 0 and 1 (exclusive).")
    stratify = None
    if data.task == "classification":
        counts = np.bincount(data.y)
        if counts.min() < 2:
            rare = [data.class_labels[i] for i in np.flatnonzero(counts < 2)]
            raise DatasetError(f"Class(es) {rare} in {data.source!r} have fewer than 2 rows: "
                               "a stratified split needs at least 2 per class.")
        stratify = data.y
    try:
        Xtr, Xte, ytr, yte = train_test_split(data.X, data.y, test_size=test_size,
                                              random_state=seed, stratify=stratify)
    except ValueError as e:
        raise DatasetError(f"Cannot split {data.source!r} ({data.n_rows} rows) with "
                           f"test_size={test_size}: {e}") from e
    mk = lambda X, y: dataclasses.replace(data, X=X, y=y)  # noqa: E731
    return mk(Xtr, ytr), mk(Xte, yte)


SPLIT_METADATA_KEY = b"kfp_interop.split"


def save_split(data: TabularData, path: str, extra: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    """Write one split as Parquet (features then the target) and return its metadata.

    The metadata (schema, classes, plus ``extra``) is also stored in the Parquet file's
    key-value metadata, so the file describes itself: :func:`load_split` needs nothing
    else, and no value changes type on the way (KFP artifact metadata turns ints into
    floats).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta = {**split_metadata(data), **(extra or {})}
    columns = ({name: data.X[name].to_numpy() for name in data.feature_names}
               if data.text_columns else
               {name: data.X[:, i] for i, name in enumerate(data.feature_names)})
    columns[data.target_name] = data.y
    table = pa.table(columns)
    table = table.replace_schema_metadata({SPLIT_METADATA_KEY: json.dumps(meta).encode()})
    with atomic_writer(path) as f:
        pq.write_table(table, f)
    return meta


def split_metadata(data: TabularData) -> dict[str, Any]:
    meta = {
        "source": data.source,
        "task": data.task,
        "feature_names": list(data.feature_names),
        "target_name": data.target_name,
        "class_labels": data.class_labels,
        "rows": data.n_rows,
    }
    if data.text_columns:
        meta["text_columns"] = list(data.text_columns)
    return meta


def read_split_metadata(path: str) -> dict[str, Any]:
    """The metadata :func:`save_split` stored in a split's Parquet file."""
    import pyarrow.parquet as pq

    try:
        raw = (pq.read_schema(path).metadata or {}).get(SPLIT_METADATA_KEY)
    except (OSError, ValueError) as e:
        raise DatasetError(f"{path!r} is not a readable Parquet split: {e}") from e
    if raw is None:
        raise DatasetError(f"{path!r} was not written by kfp-interop's load_data (no "
                           f"{SPLIT_METADATA_KEY.decode()!r} metadata).")
    return json.loads(raw)


def load_split(path: str, metadata: dict[str, Any] | None = None) -> TabularData:
    """Read a split written by :func:`save_split` (its metadata comes from the file)."""
    import numpy as np
    import pyarrow.parquet as pq

    metadata = metadata or read_split_metadata(path)
    table = pq.read_table(path)
    target = metadata["target_name"]
    y = table.column(target).to_numpy()
    y = y.astype(np.int64) if metadata["task"] == "classification" else y.astype(np.float64)
    text = list(metadata.get("text_columns") or [])
    if text:
        import pandas as pd

        X = pd.DataFrame({f: (table.column(f).to_numpy(zero_copy_only=False).astype(object)
                              if f in text else table.column(f).to_numpy().astype(np.float64))
                          for f in metadata["feature_names"]})
    else:
        X = np.column_stack([table.column(f).to_numpy().astype(np.float64)
                             for f in metadata["feature_names"]])
    return TabularData(
        X=X, y=y,
        feature_names=list(metadata["feature_names"]), target_name=target,
        task=metadata["task"], class_labels=metadata.get("class_labels"),
        source=metadata.get("source", path), text_columns=text,
    )


def read_features(path: str, feature_names: list[str], text_columns: list[str] = ()
                  ) -> Any:
    """A model's feature columns from a split written by :func:`save_split`, or from any
    CSV/Parquet file that has them (a data set from your own component): a float64
    matrix, or a DataFrame when there are text columns.

    Raises:
        DatasetError: unreadable, or the columns are not there (named).
    """
    try:
        metadata = read_split_metadata(path)
    except DatasetError:
        metadata = None
    if metadata is not None and metadata["feature_names"] == list(feature_names):
        return load_split(path, metadata).X
    from kfp_interop.data.sample import features_from_frame
    from kfp_interop.data.tabular import read_file

    return features_from_frame(read_file(path), list(feature_names), list(text_columns),
                               where=repr(path))
