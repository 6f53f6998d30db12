"""Training tabular models with seeded, reproducible settings and standard metrics.

The framework registry says what each framework offers (see
:mod:`kfp_interop.frameworks`); this module fits and scores, whatever the framework.
scikit-learn models can sit behind a ``StandardScaler`` (``scaler=True``) and, when the
training data has NaNs (``nan_policy="impute"``), behind a median ``SimpleImputer``;
both become part of the exported ONNX graph.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kfp_interop.constants import DEFAULT_SEED
from kfp_interop.data import TabularData
from kfp_interop.errors import InvalidInputError
from kfp_interop.frameworks import NativeModel, TabularFramework, get_framework
from kfp_interop.training.hyperparameters import parse_hyperparameters
from kfp_interop.training.metrics import score

__all__ = ["TrainResult", "train_model"]


@dataclasses.dataclass
class TrainResult:
    """A fitted model and what describes it.

    Attributes:
        model: the fitted estimator (a scikit-learn ``Pipeline`` when preprocessing is used).
        framework: the framework's registry name.
        framework_version: the installed version of that framework.
        estimator: the estimator's class name, e.g. ``RandomForestClassifier``.
        hyperparameters: the hyperparameters given by the user.
        metrics: see :func:`~kfp_interop.training.metrics.compute_metrics`.
        confusion_matrix: rows = true class, columns = predicted (classification only).
    """

    model: Any
    framework: str
    framework_version: str
    estimator: str
    task: str
    hyperparameters: dict[str, Any]
    seed: int
    metrics: dict[str, float]
    confusion_matrix: list[list[int]] | None


def train_model(train: TabularData, test: TabularData, *, framework: str = "sklearn",
                estimator: str = "", hyperparameters: str | dict | None = None,
                seed: int = DEFAULT_SEED, scaler: bool = False) -> TrainResult:
    """Fit a model on ``train`` and score it on ``test``.

    NaNs in ``train`` (only present when the data was loaded with
    ``nan_policy="impute"``) put a median imputer in front of scikit-learn models.

    Example:
        >>> from kfp_interop.data import load_dataset, split_dataset
        >>> tr, te = split_dataset(load_dataset("iris"))
        >>> result = train_model(tr, te, framework="sklearn", estimator="random_forest")
        >>> result.metrics["accuracy"] > 0.8
        True
    """
    fw: TabularFramework = get_framework(framework, "tabular")
    hp = parse_hyperparameters(hyperparameters)
    model = fw.build_estimator(estimator, train.task, hyperparameters=hp, seed=seed,
                               scaler=scaler, impute=train.has_missing() or test.has_missing(),
                               text_columns=train.text_columns,
                               feature_names=train.feature_names)
    try:
        model.fit(train.X, train.y)
    except ValueError as e:
        raise InvalidInputError(f"{type(model).__name__} could not fit {train.source!r}: "
                                f"{e}") from e
    metrics, cm = score(NativeModel(model, framework, train.task), test)
    return TrainResult(model=model, framework=framework, framework_version=fw.version(),
                       estimator=type(fw.final_estimator(model)).__name__, task=train.task,
                       hyperparameters=hp, seed=seed, metrics=metrics, confusion_matrix=cm)
