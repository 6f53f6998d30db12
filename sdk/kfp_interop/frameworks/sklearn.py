"""scikit-learn: named estimators or any ``module:Class`` estimator, a median imputer and
a StandardScaler in front when asked (both exported into the ONNX graph), saved with
``skops`` (loading refuses any type outside scikit-learn and NumPy)."""

from __future__ import annotations

from typing import Any

from kfp_interop.errors import InvalidInputError, ModelFileError
from kfp_interop.files import atomic_writer
from kfp_interop.frameworks.base import TabularFramework, both_tasks, import_object
from kfp_interop.frameworks.registry import register_framework

__all__ = ["SklearnFramework"]


class SklearnFramework(TabularFramework):
    name = "sklearn"
    distributions = ("scikit-learn",)
    native_format, native_file = "skops", "model.skops"
    estimators = {
        "logistic_regression": {"classification": "sklearn.linear_model:LogisticRegression"},
        "linear_regression": {"regression": "sklearn.linear_model:LinearRegression"},
        "random_forest": both_tasks("sklearn.ensemble:RandomForestClassifier",
                                    "sklearn.ensemble:RandomForestRegressor"),
        "gradient_boosting": both_tasks("sklearn.ensemble:GradientBoostingClassifier",
                                        "sklearn.ensemble:GradientBoostingRegressor"),
    }
    default_estimator = "random_forest"

    def estimator_class(self, estimator: str, task: str) -> type:
        """A named estimator, or any scikit-learn estimator as ``module:Class``."""
        if ":" not in estimator:
            return super().estimator_class(estimator, task)
        from sklearn.base import is_classifier, is_regressor

        cls = import_object(estimator, "estimator")
        try:
            probe = cls()
        except TypeError as e:
            raise InvalidInputError(f"Estimator {estimator!r} cannot be created without "
                                    f"arguments: {e}") from e
        ok = is_classifier(probe) if task == "classification" else is_regressor(probe)
        if not ok:
            raise InvalidInputError(f"Estimator {estimator!r} is not a {task} estimator.")
        return cls

    def check_preprocessing(self, *, scaler: bool, impute: bool) -> None:
        return None  # both go into the pipeline, and into the ONNX graph

    def wrap(self, model: Any, *, scaler: bool, impute: bool) -> Any:
        steps = []
        if impute:
            from sklearn.impute import SimpleImputer

            steps.append(("imputer", SimpleImputer(strategy="median")))
        if scaler:
            from sklearn.preprocessing import StandardScaler

            steps.append(("scaler", StandardScaler()))
        if not steps:
            return model
        from sklearn.pipeline import Pipeline

        return Pipeline(steps + [("model", model)])

    def save(self, model: Any, path: str, *, spec: Any = None) -> None:
        import skops.io

        with atomic_writer(path) as f:
            f.write(skops.io.dumps(model))

    def load(self, path: str, *, task: str) -> tuple[Any, Any]:
        import skops.io

        untrusted = skops.io.get_untrusted_types(file=path)
        foreign = [t for t in untrusted if not t.startswith(("sklearn.", "numpy."))]
        if foreign:
            raise ModelFileError(f"Model file {path!r} holds types outside scikit-learn "
                                 f"and NumPy ({foreign}); refusing to load it.")
        return skops.io.load(path, trusted=untrusted), None


register_framework(SklearnFramework())
