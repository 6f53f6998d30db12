"""XGBoost: ``XGBClassifier`` / ``XGBRegressor`` (one thread, seeded), saved as XGBoost's
own JSON model; warm start continues a saved booster on new rows."""

from __future__ import annotations

from typing import Any

from kfp_interop.files import atomic_path
from kfp_interop.frameworks.base import TabularFramework, both_tasks
from kfp_interop.frameworks.registry import register_framework

__all__ = ["XGBoostFramework"]


class XGBoostFramework(TabularFramework):
    name = "xgboost"
    distributions = ("xgboost", "xgboost-cpu")  # the CPU wheel is what we install
    native_format, native_file = "xgboost-json", "model.json"
    estimators = {"xgboost": both_tasks("xgboost:XGBClassifier", "xgboost:XGBRegressor")}
    estimator_defaults = {"n_jobs": 1}

    @staticmethod
    def _class(task: str):
        import xgboost

        return xgboost.XGBClassifier if task == "classification" else xgboost.XGBRegressor

    def save(self, model: Any, path: str, *, spec: Any = None) -> None:
        with atomic_path(path, suffix=".json") as tmp:  # xgboost picks the format by extension
            model.save_model(tmp)

    def load(self, path: str, *, task: str, trusted_types: Any = None) -> tuple[Any, Any]:
        model = self._class(task)()
        model.load_model(path)
        return model, None

    def continue_training(self, base: Any, X, y, *, task: str, n_estimators: int) -> Any:
        """A new model: the base booster's trees plus ``n_estimators`` more fitted on
        ``(X, y)`` (``xgb_model=`` the base booster), with the base's parameters."""
        params = {**base.get_params(), "n_estimators": n_estimators}
        model = self._class(task)(**params)
        model.fit(X, y, xgb_model=base.get_booster())
        return model

    @staticmethod
    def trees(model: Any) -> int:
        return model.get_booster().num_boosted_rounds()


register_framework(XGBoostFramework())
