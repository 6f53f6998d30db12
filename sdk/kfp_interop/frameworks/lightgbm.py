"""LightGBM: ``LGBMClassifier`` / ``LGBMRegressor`` (one thread, deterministic, quiet),
saved as LightGBM's text model and loaded back as a ``Booster``."""

from __future__ import annotations

from typing import Any

from kfp_interop.errors import ModelFileError, UnsupportedModelError
from kfp_interop.files import atomic_path
from kfp_interop.frameworks.base import ForeignModel, TabularFramework, both_tasks, check_task
from kfp_interop.frameworks.registry import register_framework

__all__ = ["LightGBMFramework", "booster_of"]

_REGRESSION_OBJECTIVES = ("regression", "regression_l1", "huber", "fair", "poisson",
                          "quantile", "mape", "gamma", "tweedie")


def booster_of(model: Any):
    """The ``lightgbm.Booster`` of a Booster or a fitted ``LGBMModel``."""
    import lightgbm

    return model if isinstance(model, lightgbm.Booster) else model.booster_


class LightGBMFramework(TabularFramework):
    name = "lightgbm"
    native_format, native_file = "lightgbm-text", "model.txt"
    estimators = {"lightgbm": both_tasks("lightgbm:LGBMClassifier", "lightgbm:LGBMRegressor")}
    estimator_defaults = {"verbosity": -1, "deterministic": True, "n_jobs": 1}

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
        return ForeignModel(booster, task, format="lightgbm-text",
                            estimator=f"lightgbm.Booster({objective})",
                            n_features=booster.num_feature(),
                            n_classes=(max(2, int(dump.get("num_class", 1)))
                                       if task == "classification" else None),
                            feature_names=list(names) if names != default else None)

    def predict_proba(self, model: Any, X) -> Any:
        import lightgbm
        import numpy as np

        if isinstance(model, lightgbm.Booster):
            p = np.asarray(model.predict(X))
            return np.column_stack([1 - p, p]) if p.ndim == 1 else p
        return model.predict_proba(X)


register_framework(LightGBMFramework())
