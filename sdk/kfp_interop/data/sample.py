"""Sample rows a model is checked on: any CSV/Parquet table, or a ``.npy``/``.npz``
array of rows, as one table of named columns."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from kfp_interop.errors import DatasetError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["read_sample", "features_from_frame", "text_columns_of"]

#: the names an array's columns get (an array has none of its own)
ARRAY_COLUMN = "f{}"


def _read_array(path: str) -> "pd.DataFrame":
    """A 2-D array (``.npy``, or the one array, or ``X``, of a ``.npz``) as columns
    ``f0 .. fn-1``; nothing in the file is unpickled."""
    import numpy as np
    import pandas as pd

    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise DatasetError(f"Cannot read array file {path!r} ({e}); object arrays are "
                           "refused (they would be unpickled).") from e
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            keys = list(loaded.keys())
            key = "X" if "X" in keys else keys[0] if len(keys) == 1 else None
            if key is None:
                raise DatasetError(f"{path!r} holds arrays {keys}: name the rows 'X' (or "
                                   "store one array).")
            array = loaded[key]
    else:
        array = loaded
    if array.ndim != 2 or array.shape[0] == 0 or array.dtype.kind not in "biuf":
        raise DatasetError(f"{path!r} holds a {array.dtype} array of shape {array.shape}; "
                           "give rows of numbers, shape (rows, features).")
    return pd.DataFrame(array.astype(np.float64),
                        columns=[ARRAY_COLUMN.format(i) for i in range(array.shape[1])])


def read_sample(path: str, target_column: str = "") -> tuple["pd.DataFrame", Any]:
    """The sample's feature columns, and its target column (``None`` when not named).

    Raises:
        DatasetError: unreadable, no rows, or ``target_column`` absent (named).
    """
    from kfp_interop.data.tabular import read_file

    if not os.path.isfile(path):
        raise DatasetError(f"Sample file {path!r} does not exist.")
    ext = os.path.splitext(path)[1].lower()
    frame = _read_array(path) if ext in (".npy", ".npz") else read_file(path)
    if frame.shape[0] == 0:
        raise DatasetError(f"Sample file {path!r} has no rows.")
    target = None
    if target_column:
        if target_column not in frame.columns:
            raise DatasetError(f"Sample {path!r} has no target column {target_column!r}; its "
                               f"columns are {list(map(str, frame.columns))}.")
        target = frame.pop(target_column)
    frame.columns = [str(c) for c in frame.columns]
    return frame, target


def text_columns_of(frame: "pd.DataFrame", columns: list[str]) -> list[str]:
    """Which of ``columns`` hold text (not numbers or booleans)."""
    import pandas as pd

    return [c for c in columns if not (pd.api.types.is_numeric_dtype(frame[c])
                                       or pd.api.types.is_bool_dtype(frame[c]))]


def features_from_frame(frame: "pd.DataFrame", feature_names: list[str],
                        text_columns: list[str] = (), *, where: str = "the data") -> Any:
    """A model's feature columns from a table: a float64 matrix, or a DataFrame when
    there are text columns (text as strings, missing text as "").

    Raises:
        DatasetError: a column is missing, or a number column holds text (named).
    """
    import numpy as np
    import pandas as pd

    missing = [c for c in feature_names if c not in frame.columns]
    if missing:
        raise DatasetError(f"{where} lacks the model's feature column(s) {missing}; its "
                           f"columns are {list(map(str, frame.columns))}.")
    if not text_columns:
        try:
            return frame[list(feature_names)].to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise DatasetError(f"{where}: the model's features must be numbers ({e}).") from e
    return pd.DataFrame({c: (frame[c].fillna("").astype(str).to_numpy(dtype=object)
                             if c in text_columns else frame[c].to_numpy(dtype=np.float64))
                         for c in feature_names})
