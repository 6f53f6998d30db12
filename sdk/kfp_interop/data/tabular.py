"""Tabular data: scikit-learn's bundled data sets and the user's CSV or Parquet files,
checked and fingerprinted.

Missing values (NaN) policy, chosen once for the whole project:

* ``nan_policy="error"`` (the default) refuses a data set with NaNs in any feature
  column, naming the columns and their counts. Rows with a missing *target* are always
  refused: there is no honest way to train on them.
* ``nan_policy="impute"`` keeps the NaNs in the data; the training step then puts a
  median :class:`~sklearn.impute.SimpleImputer` *inside* scikit-learn models, so the
  exported ONNX graph imputes too and the served model accepts NaNs. XGBoost and
  LightGBM handle missing values natively (and so do their ONNX tree ensembles), so
  for them NaNs pass through unchanged. The parity gate runs on the held-out rows,
  NaNs included, so either way the served behaviour is proven, not assumed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import TYPE_CHECKING

from kfp_interop.constants import TASKS
from kfp_interop.errors import DatasetError, InvalidInputError, UnknownDatasetError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

__all__ = ["BUNDLED_DATASETS", "NAN_POLICIES", "TASKS", "TabularData", "load_dataset",
           "source_fingerprint", "check_source_fingerprint", "model_inputs"]

NAN_POLICIES = ("error", "impute")

# name -> (task, loader function name in sklearn.datasets)
BUNDLED_DATASETS: dict[str, tuple[str, str]] = {
    "iris": ("classification", "load_iris"),
    "wine": ("classification", "load_wine"),
    "breast_cancer": ("classification", "load_breast_cancer"),
    "digits": ("classification", "load_digits"),
    "diabetes": ("regression", "load_diabetes"),
}


@dataclasses.dataclass
class TabularData:
    """Features, target and what is known about them.

    Attributes:
        X: float64 feature matrix, shape (rows, features); when the data has text
            columns, a pandas DataFrame instead (numeric columns float64, text columns
            strings), which scikit-learn models take as is.
        y: target; int64 class indices (0..k-1) for classification, float64 for regression.
        feature_names: column names of ``X``.
        target_name: name of the target column.
        task: ``"classification"`` or ``"regression"``.
        class_labels: the original class values as strings, index i is class i
            (``None`` for regression).
        source: the data set name or file path it came from.
        text_columns: the feature columns holding text (categories), in column order.
    """

    X: "np.ndarray | pd.DataFrame"
    y: "np.ndarray"
    feature_names: list[str]
    target_name: str
    task: str
    class_labels: list[str] | None
    source: str
    text_columns: list[str] = dataclasses.field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])

    def numeric(self) -> "np.ndarray":
        """The numeric features as a float64 matrix (all of ``X`` when there is no text)."""
        import numpy as np

        if not self.text_columns:
            return np.asarray(self.X, dtype=np.float64)
        return self.X[[c for c in self.feature_names if c not in self.text_columns]
                      ].to_numpy(dtype=np.float64)

    def fingerprint(self) -> str:
        """sha256 over the column names, the feature values and the target, in order.

        NaNs hash consistently (as their IEEE bit pattern after normalisation), so
        the same file always yields the same fingerprint; text columns hash their
        values as JSON.
        """
        import numpy as np

        h = hashlib.sha256()
        header = {"features": self.feature_names, "target": self.target_name,
                  "task": self.task, "classes": self.class_labels}
        if self.text_columns:
            header["text_columns"] = self.text_columns
        h.update(json.dumps(header).encode())
        X = np.ascontiguousarray(self.numeric(), dtype="<f8")
        X = np.where(np.isnan(X), np.nan, X)  # canonical NaN
        h.update(X.tobytes())
        for column in self.text_columns:
            h.update(json.dumps(self.X[column].tolist()).encode())
        h.update(np.ascontiguousarray(self.y, dtype="<f8").tobytes())
        return h.hexdigest()

    def has_missing(self) -> bool:
        import numpy as np

        return bool(np.isnan(self.numeric()).any())

    def onnx_inputs(self, rows: int | None = None) -> "np.ndarray | dict":
        """The features as a model of kfp-interop takes them: the FP32 matrix, or with
        text columns one ``[rows, 1]`` tensor per column (FP32 or strings) by name."""
        return model_inputs(self.X[:rows] if rows else self.X, self.text_columns)


def model_inputs(X, text_columns: list[str]) -> "np.ndarray | dict":
    """``X`` (a matrix, or a DataFrame with ``text_columns``) as model inputs: the FP32
    matrix, or one ``[rows, 1]`` tensor per column by name (FP32, or strings)."""
    import numpy as np

    if not text_columns:
        return np.ascontiguousarray(X, dtype=np.float32)
    return {str(c): (X[c].to_numpy(dtype=object) if c in text_columns
                     else X[c].to_numpy(dtype=np.float32)).reshape(-1, 1)
            for c in X.columns}


def _load_bundled(name: str) -> TabularData:
    import numpy as np
    import sklearn.datasets

    task, loader = BUNDLED_DATASETS[name]
    bunch = getattr(sklearn.datasets, loader)()
    X = np.asarray(bunch.data, dtype=np.float64)
    feature_names = [str(f) for f in getattr(bunch, "feature_names", [])] or [
        f"f{i}" for i in range(X.shape[1])
    ]
    if task == "classification":
        y = np.asarray(bunch.target, dtype=np.int64)
        names = getattr(bunch, "target_names", None)
        labels = [str(n) for n in names] if names is not None else [str(c) for c in np.unique(y)]
    else:
        y = np.asarray(bunch.target, dtype=np.float64)
        labels = None
    return TabularData(X, y, feature_names, "target", task, labels, name)


def read_file(path: str) -> "pd.DataFrame":
    """A CSV or Parquet file as a DataFrame, by its extension; a file without one (a KFP
    Dataset artifact's path) by its content (Parquet starts with ``PAR1``).

    Raises:
        DatasetError: another extension, an empty or unreadable file.
    """
    import pandas as pd

    ext = os.path.splitext(path)[1].lower()
    if not ext and os.path.isfile(path):
        with open(path, "rb") as f:
            ext = ".parquet" if f.read(4) == b"PAR1" else ".csv"
    try:
        if ext in (".csv", ".txt"):
            return pd.read_csv(path)
        if ext in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (ValueError, OSError) as e:  # pandas' EmptyDataError is a ValueError
        if "No columns to parse" in str(e):
            raise DatasetError(f"Data file {path!r} is empty: give a file with a header row "
                               "and at least one data row.") from e
        raise DatasetError(f"Cannot read data file {path!r}: {e}") from e
    raise DatasetError(
        f"Data file {path!r} has extension {ext!r}; use a .csv or .parquet file."
    )


def _infer_task(y: "pd.Series") -> str:
    import pandas as pd

    if pd.api.types.is_float_dtype(y) and y.nunique(dropna=True) > 20:
        return "regression"
    if pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y):
        # integers with many distinct values are a count or amount, not a class
        return "regression" if y.nunique(dropna=True) > 20 else "classification"
    return "classification"


def _from_frame(df: "pd.DataFrame", target_column: str, task: str, source: str,
                nan_policy: str) -> TabularData:
    import numpy as np
    import pandas as pd

    if df.shape[0] == 0:
        raise DatasetError(f"Data set {source!r} has no rows: give at least one data row "
                           "per class (and enough for a train/test split).")
    if not target_column:
        raise DatasetError(
            f"Data set {source!r} is a file: name its target column with target_column "
            f"(columns: {list(map(str, df.columns))})."
        )
    if target_column not in df.columns:
        raise DatasetError(
            f"Target column {target_column!r} is not in {source!r}; its columns are "
            f"{list(map(str, df.columns))}. Pass one of them as target_column."
        )
    features = df.drop(columns=[target_column])
    if features.shape[1] == 0:
        raise DatasetError(f"Data set {source!r} has no feature columns besides the target "
                           f"{target_column!r}.")
    text = [str(c) for c in features.columns
            if not (pd.api.types.is_numeric_dtype(features[c])
                    or pd.api.types.is_bool_dtype(features[c]))]
    y_raw = df[target_column]
    missing_y = int(y_raw.isna().sum())
    if missing_y:
        raise DatasetError(f"Target column {target_column!r} in {source!r} has {missing_y} "
                           "missing value(s): drop those rows before training.")
    nan_counts = {str(c): int(n) for c, n in features.isna().sum().items() if n}
    if nan_counts and nan_policy == "error":
        raise DatasetError(
            f"Feature column(s) in {source!r} have missing values (NaN counts: {nan_counts}). "
            "Clean the file, or pass nan_policy='impute' to impute them inside the model "
            "(medians for numbers, an empty-text category for text)."
        )
    features.columns = [str(c) for c in features.columns]
    if text:
        X = pd.DataFrame({c: (features[c].fillna("").astype(str).to_numpy(dtype=object)
                              if c in text else features[c].to_numpy(dtype=np.float64))
                          for c in features.columns})
    else:
        X = features.to_numpy(dtype=np.float64)
    if task == "auto":
        task = _infer_task(y_raw)
    if task == "classification":
        classes, y = np.unique(y_raw.astype(str).to_numpy() if not
                               pd.api.types.is_numeric_dtype(y_raw) else y_raw.to_numpy(),
                               return_inverse=True)
        labels = [str(c.item()) if hasattr(c, "item") else str(c) for c in classes]
        if len(labels) < 2:
            raise DatasetError(f"Target column {target_column!r} in {source!r} has a single "
                               f"class {labels}: classification needs at least two.")
        y = y.astype(np.int64)
    else:
        if not pd.api.types.is_numeric_dtype(y_raw):
            raise DatasetError(f"Target column {target_column!r} in {source!r} is not numeric; "
                               "regression needs a numeric target (or use task='classification').")
        y = y_raw.to_numpy(dtype=np.float64)
        labels = None
    return TabularData(X, y, list(features.columns), str(target_column), task, labels,
                       source, text)


def _check_source(source: str) -> None:
    if not source:
        raise UnknownDatasetError(
            f"No data set given: use one of {sorted(BUNDLED_DATASETS)} or a CSV/Parquet path.")
    if source not in BUNDLED_DATASETS and not os.path.isfile(source):
        raise UnknownDatasetError(
            f"Unknown data set {source!r}: it is not a bundled data set "
            f"({', '.join(sorted(BUNDLED_DATASETS))}) and no file exists at that path."
        )


def source_fingerprint(source: str) -> str:
    """What a data set's content is, cheaply: ``sha256:<hex>`` of a file's bytes, or
    ``bundled:<name>:scikit-learn-<version>`` for a bundled set (its rows come with the
    library). Pipelines pass it to ``load_data`` so that a file changed at the same path
    is not served from KFP's cache.

    Raises:
        UnknownDatasetError: neither a bundled name nor an existing file.
    """
    _check_source(source)
    if source in BUNDLED_DATASETS:
        import importlib.metadata

        return f"bundled:{source}:scikit-learn-{importlib.metadata.version('scikit-learn')}"
    from kfp_interop.files import sha256_file

    return f"sha256:{sha256_file(source)}"


def check_source_fingerprint(source: str, expected: str) -> None:
    """Refuse a data set that is no longer what ``fingerprint_data`` saw (``expected``;
    empty: nothing to check), so a file changed between the two tasks is not split
    under the old cache key.

    Raises:
        DatasetError: the content changed.
    """
    if expected and source_fingerprint(source) != expected:
        raise DatasetError(f"Data set {source!r} changed after it was fingerprinted "
                           f"({expected}): run the pipeline again.")


def load_dataset(source: str, *, target_column: str | None = None, task: str = "auto",
                 nan_policy: str = "error") -> TabularData:
    """Load a bundled data set by name, or a CSV/Parquet file by path.

    Args:
        source: one of :data:`BUNDLED_DATASETS`, or a path to a ``.csv``/``.parquet`` file.
        target_column: the target column of a file (ignored for bundled data sets).
        task: ``"classification"``, ``"regression"`` or ``"auto"`` (bundled sets know
            their task; for files, a float target with many values means regression).
        nan_policy: ``"error"`` or ``"impute"`` (see the module docstring).

    Returns:
        The loaded :class:`TabularData`.

    Raises:
        UnknownDatasetError: ``source`` is neither a bundled name nor an existing file.
        DatasetError: empty data, missing target column, non-numeric features, NaNs.
        InvalidInputError: unknown ``task`` or ``nan_policy``.

    Example:
        >>> data = load_dataset("iris")
        >>> data.task, data.X.shape
        ('classification', (150, 4))
    """
    if task not in TASKS + ("auto",):
        raise InvalidInputError(f"Unknown task {task!r}: use one of {list(TASKS) + ['auto']}.")
    if nan_policy not in NAN_POLICIES:
        raise InvalidInputError(
            f"Unknown nan_policy {nan_policy!r}: use one of {list(NAN_POLICIES)}.")
    _check_source(source)
    if source in BUNDLED_DATASETS:
        data = _load_bundled(source)
        if task != "auto" and task != data.task:
            raise InvalidInputError(f"Data set {source!r} is a {data.task} data set, "
                                    f"not {task}: leave task='auto'.")
        return data
    return _from_frame(read_file(source), target_column or "", task, source, nan_policy)
