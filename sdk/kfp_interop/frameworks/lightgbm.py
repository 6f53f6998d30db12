"""LightGBM: ``LGBMClassifier`` / ``LGBMRegressor`` (one thread, deterministic, quiet),
saved as LightGBM's text model and loaded back as a ``Booster``."""

from __future__ import annotations

from typing import Any

from kfp_interop.files import atomic_path
from kfp_interop.frameworks.base import TabularFramework, both_tasks
from kfp_interop.frameworks.registry import register_framework

__all__ = ["LightGBMFramework", "booster_of"]


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

    def predict_proba(self, model: Any, X) -> Any:
        import lightgbm
        import numpy as np

        if isinstance(model, lightgbm.Booster):
            p = np.asarray(model.predict(X))
            return np.column_stack([1 - p, p]) if p.ndim == 1 else p
        return model.predict_proba(X)


register_framework(LightGBMFramework())
