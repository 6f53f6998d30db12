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
           "source_fingerprint"]

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
        X: float64 feature matrix, shape (rows, features).
        y: target; int64 class indices (0..k-1) for classification, float64 for regression.
        feature_names: column names of ``X``.
        target_name: name of the target column.
        task: ``"classification"`` or ``"regression"``.
        class_labels: the original class values as strings, index i is class i
            (``None`` for regression).
        source: the data set name or file path it came from.
    """

    X: "np.ndarray"
    y: "np.ndarray"
    feature_names: list[str]
    target_name: str
    task: str
    class_labels: list[str] | None
    source: str

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])

    def fingerprint(self) -> str:
        """sha256 over the column names, the feature values and the target, in order.

        NaNs hash consistently (as their IEEE bit pattern after normalisation), so
        the same file always yields the same fingerprint.
        """
        import numpy as np

        h = hashlib.sha256()
        h.update(json.dumps({"features": self.feature_names, "target": self.target_name,
                             "task": self.task, "classes": self.class_labels}).encode())
        X = np.ascontiguousarray(self.X, dtype="<f8")
        X = np.where(np.isnan(X), np.nan, X)  # canonical NaN
        h.update(X.tobytes())
        h.update(np.ascontiguousarray(self.y, dtype="<f8").tobytes())
        return h.hexdigest()

    def has_missing(self) -> bool:
        import numpy as np

        return bool(np.isnan(self.X).any())


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


def _read_file(path: str) -> "pd.DataFrame":
    import pandas as pd

    ext = os.path.splitext(path)[1].lower()
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
    bad = [str(c) for c in features.columns
           if not (pd.api.types.is_numeric_dtype(features[c])
                   or pd.api.types.is_bool_dtype(features[c]))]
    if bad:
        examples = {c: str(features[c].dropna().iloc[0]) if features[c].notna().any() else ""
                    for c in bad[:3]}
        raise DatasetError(
            f"Feature column(s) {bad} in {source!r} are not numeric (e.g. {examples}). "
            "Encode them as numbers (one-hot or ordinal) before training, or drop them."
        )
    y_raw = df[target_column]
    missing_y = int(y_raw.isna().sum())
    if missing_y:
        raise DatasetError(f"Target column {target_column!r} in {source!r} has {missing_y} "
                           "missing value(s): drop those rows before training.")
    X = features.to_numpy(dtype=np.float64)
    nan_counts = {str(c): int(n) for c, n in features.isna().sum().items() if n}
    if nan_counts and nan_policy == "error":
        raise DatasetError(
            f"Feature column(s) in {source!r} have missing values (NaN counts: {nan_counts}). "
            "Clean the file, or pass nan_policy='impute' to impute medians inside the model."
        )
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
    return TabularData(X, y, [str(c) for c in features.columns], str(target_column), task,
                       labels, source)


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
    return _from_frame(_read_file(source), target_column or "", task, source, nan_policy)
