"""LightGBM: ``LGBMClassifier`` / ``LGBMRegressor`` (one thread, deterministic, quiet),
saved as LightGBM's text model and loaded back as a ``Booster``."""

from __future__ import annotations

from typing import Any

from kfp_interop.errors import ModelFileError, UnsupportedModelError
from kfp_interop.files import atomic_path
from kfp_interop.frameworks.base import (ForeignModel, TabularFramework, both_tasks,
                                         check_task, with_categories)
from kfp_interop.frameworks.registry import register_framework

__all__ = ["LightGBMFramework", "booster_of", "pandas_categories"]

_REGRESSION_OBJECTIVES = ("regression", "regression_l1", "huber", "fair", "poisson",
                          "quantile", "mape", "gamma", "tweedie")


def booster_of(model: Any):
    """The ``lightgbm.Booster`` of a Booster or a fitted ``LGBMModel``."""
    import lightgbm

    return model if isinstance(model, lightgbm.Booster) else model.booster_


def pandas_categories(booster) -> dict[int, list]:
    """``{feature index: categories}`` of a booster trained on pandas ``category``
    columns. LightGBM keeps each such column's categories (``pandas_categorical``, in
    the order of the categorical features) and trains on their codes.

    Raises:
        ModelFileError: the file lists categories for other features than it splits
            on as categorical.
    """
    stored = booster.pandas_categorical or []
    if not stored:
        return {}
    indices = booster.params.get("categorical_feature") or []
    if isinstance(indices, (int, str)):
        indices = [indices]
    try:
        indices = sorted(int(i) for i in indices)
    except (TypeError, ValueError):
        indices = []
    if len(indices) != len(stored):
        raise ModelFileError(
            f"The LightGBM model lists categories for {len(stored)} column(s) but marks "
            f"features {indices} as categorical: save it again from the booster trained "
            "on the DataFrame (booster.save_model).")
    return {i: list(values) for i, values in zip(indices, stored)}


class LightGBMFramework(TabularFramework):
    name = "lightgbm"
    native_format, native_file = "lightgbm-text", "model.txt"
    estimators = {"lightgbm": both_tasks("lightgbm:LGBMClassifier", "lightgbm:LGBMRegressor")}
    estimator_defaults = {"verbosity": -1, "deterministic": True, "n_jobs": 1}

    def categories(self, model: Any) -> dict[int, list]:
        return pandas_categories(booster_of(model))

    def dask_fit(self, model: Any, client: Any, X, y) -> Any:
        """LightGBM's own Dask estimators (``DaskLGBMClassifier``/``Regressor``): one
        LightGBM worker per Dask worker, data parallel; ``to_local()`` gives the plain
        ``LGBMClassifier``/``LGBMRegressor``."""
        import lightgbm

        cls = (lightgbm.DaskLGBMClassifier if isinstance(model, lightgbm.LGBMClassifier)
               else lightgbm.DaskLGBMRegressor)
        params = model.get_params()
        params.pop("n_jobs", None)  # LightGBM sizes threads per Dask worker
        distributed = cls(client=client, **params)
        distributed.fit(X, y)
        return distributed.to_local()

    def same_feature(self, model_name: str, column: str) -> bool:
        # LightGBM writes a DataFrame's column names with spaces as underscores
        return model_name in (column, column.replace(" ", "_"))

    def save(self, model: Any, path: str, *, spec: Any = None) -> None:
        with atomic_path(path) as tmp:
            booster_of(model).save_model(tmp)

    def load(self, path: str, *, task: str, trusted_types: Any = None) -> tuple[Any, Any]:
        import lightgbm

        return lightgbm.Booster(model_file=path), None

    def read_foreign(self, path: str, *, task: str = "", n_features: int | None = None,
                     trusted_types: Any = None, architecture: str = "",
                     init_args: dict | None = None) -> ForeignModel:
        """A LightGBM text model (``Booster.save_model``); the task comes from its
        objective."""
        import lightgbm

        try:
            booster = lightgbm.Booster(model_file=path)
        except lightgbm.basic.LightGBMError as e:
            raise ModelFileError(f"{path!r} is not a LightGBM text model ({e}). Save it with "
                                 "booster.save_model('model.txt').") from e
        dump = booster.dump_model(num_iteration=0)
        objective = str(dump.get("objective", "")).split(" ")[0]
        found = ("classification" if objective in ("binary", "multiclass", "multiclassova")
                 else "regression" if objective in _REGRESSION_OBJECTIVES else "")
        if not found:
            raise UnsupportedModelError(f"{path!r} has objective {objective!r}: kfp-interop "
                                        "exports classifiers and regressors (not ranking).")
        task = check_task(task, found, path)
        names = booster.feature_name()
        default = [f"Column_{i}" for i in range(len(names))]
        pandas_categories(booster)  # the categories agree with the splits
        return ForeignModel(booster, task, format="lightgbm-text",
                            estimator=f"lightgbm.Booster({objective})",
                            n_features=booster.num_feature(),
                            n_classes=(max(2, int(dump.get("num_class", 1)))
                                       if task == "classification" else None),
                            feature_names=list(names) if names != default else None)

    def predict_proba(self, model: Any, X) -> Any:
        import lightgbm
        import numpy as np

        categories = self.categories(model)
        if categories:
            X = with_categories(X, categories)
        if isinstance(model, lightgbm.Booster):
            p = np.asarray(model.predict(X))
            return np.column_stack([1 - p, p]) if p.ndim == 1 else p
        return model.predict_proba(X)

    def predict(self, model: Any, X) -> Any:
        categories = self.categories(model)
        return model.predict(with_categories(X, categories) if categories else X)


register_framework(LightGBMFramework())
