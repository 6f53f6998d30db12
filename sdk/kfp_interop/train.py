"""Training tabular models with seeded, reproducible settings and standard metrics.

Frameworks and their estimators (``framework`` / ``estimator`` parameters):

============  ===============================================  =======================
framework     estimator                                        tasks
============  ===============================================  =======================
sklearn       ``logistic_regression``                          classification
sklearn       ``linear_regression``                            regression
sklearn       ``random_forest`` (default), ``gradient_boosting``  both
sklearn       ``module:Class`` of any scikit-learn estimator   as the class allows
xgboost       ``xgboost`` (default)                            both
lightgbm      ``lightgbm`` (default)                           both
============  ===============================================  =======================

scikit-learn models can sit behind a ``StandardScaler`` (``scaler=True``) and, when the
training data has NaNs (``nan_policy="impute"``), behind a median ``SimpleImputer``; both
become part of the exported ONNX graph.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from typing import Any

from kfp_interop.data import TabularData
from kfp_interop.errors import InvalidInputError, UnknownNameError
from kfp_interop.registry import Registry

__all__ = [
    "FRAMEWORKS",
    "TrainResult",
    "parse_hyperparameters",
    "build_estimator",
    "train_model",
    "compute_metrics",
    "estimator_names",
]

# (framework, estimator) -> {task: "module:Class"}
_ESTIMATORS: dict[tuple[str, str], dict[str, str]] = {
    ("sklearn", "logistic_regression"): {
        "classification": "sklearn.linear_model:LogisticRegression"},
    ("sklearn", "linear_regression"): {"regression": "sklearn.linear_model:LinearRegression"},
    ("sklearn", "random_forest"): {
        "classification": "sklearn.ensemble:RandomForestClassifier",
        "regression": "sklearn.ensemble:RandomForestRegressor"},
    ("sklearn", "gradient_boosting"): {
        "classification": "sklearn.ensemble:GradientBoostingClassifier",
        "regression": "sklearn.ensemble:GradientBoostingRegressor"},
    ("xgboost", "xgboost"): {
        "classification": "xgboost:XGBClassifier", "regression": "xgboost:XGBRegressor"},
    ("lightgbm", "lightgbm"): {
        "classification": "lightgbm:LGBMClassifier", "regression": "lightgbm:LGBMRegressor"},
}
_DEFAULT_ESTIMATOR = {"sklearn": "random_forest", "xgboost": "xgboost", "lightgbm": "lightgbm"}

FRAMEWORKS: Registry[str] = Registry(
    "framework", "Add one with kfp_interop.train.FRAMEWORKS.register(name, default_estimator).")
for _fw, _est in _DEFAULT_ESTIMATOR.items():
    FRAMEWORKS.register(_fw, _est)


def estimator_names(framework: str) -> list[str]:
    """Named estimators of a framework (sklearn also takes any ``module:Class``)."""
    FRAMEWORKS.get(framework)
    return sorted(e for fw, e in _ESTIMATORS if fw == framework)


@dataclasses.dataclass
class TrainResult:
    """A fitted model and what describes it.

    Attributes:
        model: the fitted estimator (a scikit-learn ``Pipeline`` when preprocessing is used).
        framework: ``sklearn``, ``xgboost`` or ``lightgbm``.
        framework_version: the installed version of that framework.
        estimator: the estimator's class name, e.g. ``RandomForestClassifier``.
        hyperparameters: the hyperparameters given by the user.
        metrics: see :func:`compute_metrics`.
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


def parse_hyperparameters(value: str | dict | None) -> dict[str, Any]:
    """Accept a JSON object (string) or dict; refuse anything else with a clear error."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return dict(value)
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as e:
        raise InvalidInputError(
            f"hyperparameters {value!r} is not valid JSON ({e.msg}); give a JSON object "
            'such as \'{"n_estimators": 50}\'.') from e
    if not isinstance(parsed, dict):
        raise InvalidInputError(
            f"hyperparameters {value!r} must be a JSON object, not {type(parsed).__name__}.")
    return parsed


def _import_class(path: str) -> type:
    module, _, name = path.partition(":")
    if not module or not name:
        raise InvalidInputError(f"Estimator {path!r} must look like 'module:Class'.")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise InvalidInputError(f"Cannot import estimator {path!r}: {e}. Check the module "
                                "and class names, and that the package is installed.") from e


def _framework_version(framework: str) -> str:
    import importlib.metadata as md

    dist = {"sklearn": "scikit-learn", "xgboost": "xgboost", "lightgbm": "lightgbm"}[framework]
    for name in (dist, f"{dist}-cpu"):
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            continue
    return "unknown"


def build_estimator(framework: str, estimator: str, task: str, *,
                    hyperparameters: dict[str, Any] | None = None, seed: int = 42,
                    scaler: bool = False, impute: bool = False) -> Any:
    """Create an unfitted estimator (maybe inside a Pipeline) from names and settings.

    Raises:
        UnknownNameError: unknown framework or estimator (the message lists known ones).
        InvalidInputError: estimator not fit for the task; bad hyperparameter names;
            a scaler asked for a non-scikit-learn model.
    """
    FRAMEWORKS.get(framework)
    estimator = estimator or _DEFAULT_ESTIMATOR[framework]
    hyperparameters = dict(hyperparameters or {})
    if ":" in estimator and framework == "sklearn":
        cls = _import_class(estimator)
        from sklearn.base import is_classifier, is_regressor

        try:
            probe = cls()
        except TypeError as e:
            raise InvalidInputError(f"Estimator {estimator!r} cannot be created without "
                                    f"arguments: {e}") from e
        ok = is_classifier(probe) if task == "classification" else is_regressor(probe)
        if not ok:
            raise InvalidInputError(f"Estimator {estimator!r} is not a {task} estimator.")
    else:
        paths = _ESTIMATORS.get((framework, estimator))
        if paths is None:
            raise UnknownNameError(
                f"Unknown estimator {estimator!r} for framework {framework!r}; known: "
                f"{estimator_names(framework)}"
                + (" or any 'module:Class' scikit-learn estimator." if framework == "sklearn"
                   else "."))
        if task not in paths:
            raise InvalidInputError(
                f"Estimator {estimator!r} does not do {task}; for {task} use one of "
                f"{sorted(e for (fw, e), p in _ESTIMATORS.items() if fw == framework and task in p)}.")
        cls = _import_class(paths[task])
    try:
        valid = set(cls().get_params())
    except TypeError:
        valid = set()
    unknown = sorted(set(hyperparameters) - valid) if valid else []
    if unknown:
        raise InvalidInputError(
            f"Unknown hyperparameter(s) {unknown} for {cls.__name__}; valid ones: "
            f"{sorted(valid)}.")
    if "random_state" in valid and "random_state" not in hyperparameters:
        hyperparameters["random_state"] = seed
    if framework == "lightgbm":
        hyperparameters.setdefault("verbosity", -1)
        hyperparameters.setdefault("deterministic", True)
        hyperparameters.setdefault("n_jobs", 1)
    if framework == "xgboost":
        hyperparameters.setdefault("n_jobs", 1)
    try:
        model = cls(**hyperparameters)
    except (TypeError, ValueError) as e:
        raise InvalidInputError(f"Hyperparameters {hyperparameters} do not fit "
                                f"{cls.__name__}: {e}") from e
    if task == "classification" and not hasattr(model, "predict_proba"):
        raise InvalidInputError(
            f"Estimator {cls.__name__} has no predict_proba (with these hyperparameters); "
            "kfp-interop classifiers return class probabilities. Pick one that has it "
            "(e.g. SVC needs probability=true).")
    if scaler and framework != "sklearn":
        raise InvalidInputError(
            f"scaler=True applies to scikit-learn estimators; {framework} trees do not need "
            "feature scaling. Drop the scaler or use framework='sklearn'.")
    steps = []
    if impute and framework == "sklearn":
        from sklearn.impute import SimpleImputer

        steps.append(("imputer", SimpleImputer(strategy="median")))
    if scaler:
        from sklearn.preprocessing import StandardScaler

        steps.append(("scaler", StandardScaler()))
    if steps:
        from sklearn.pipeline import Pipeline

        return Pipeline(steps + [("model", model)])
    return model


def compute_metrics(task: str, y_true, y_pred, proba=None) -> tuple[dict[str, float], Any]:
    """Standard metrics.

    Classification: ``accuracy``, ``f1_macro``, ``roc_auc`` (binary, or one-vs-rest macro;
    only when probabilities are given and every class is present), plus the confusion
    matrix. Regression: ``r2``, ``rmse``, ``mae``.
    """
    import numpy as np
    from sklearn import metrics as m

    if task == "classification":
        out = {
            "accuracy": float(m.accuracy_score(y_true, y_pred)),
            "f1_macro": float(m.f1_score(y_true, y_pred, average="macro")),
        }
        if proba is not None and len(np.unique(y_true)) == proba.shape[1]:
            if proba.shape[1] == 2:
                out["roc_auc"] = float(m.roc_auc_score(y_true, proba[:, 1]))
            else:
                out["roc_auc"] = float(m.roc_auc_score(y_true, proba, multi_class="ovr",
                                                       average="macro"))
        n = proba.shape[1] if proba is not None else int(max(y_true.max(), y_pred.max()) + 1)
        cm = m.confusion_matrix(y_true, y_pred, labels=list(range(n))).tolist()
        return out, cm
    return {
        "r2": float(m.r2_score(y_true, y_pred)),
        "rmse": float(np.sqrt(m.mean_squared_error(y_true, y_pred))),
        "mae": float(m.mean_absolute_error(y_true, y_pred)),
    }, None


def train_model(train: TabularData, test: TabularData, *, framework: str = "sklearn",
                estimator: str = "", hyperparameters: str | dict | None = None,
                seed: int = 42, scaler: bool = False) -> TrainResult:
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
    from kfp_interop.native import NativeModel

    hp = parse_hyperparameters(hyperparameters)
    model = build_estimator(framework, estimator, train.task, hyperparameters=hp, seed=seed,
                            scaler=scaler, impute=train.has_missing() or test.has_missing())
    y = train.y
    try:
        model.fit(train.X, y)
    except ValueError as e:
        raise InvalidInputError(f"{type(model).__name__} could not fit {train.source!r}: "
                                f"{e}") from e
    native = NativeModel(model, framework, train.task)
    pred = native.predict(test.X)
    proba = native.predict_proba(test.X) if train.task == "classification" else None
    metrics, cm = compute_metrics(train.task, test.y, pred, proba)
    est = model.steps[-1][1] if hasattr(model, "steps") else model
    return TrainResult(model=model, framework=framework,
                       framework_version=_framework_version(framework),
                       estimator=type(est).__name__, task=train.task, hyperparameters=hp,
                       seed=seed, metrics=metrics, confusion_matrix=cm)


