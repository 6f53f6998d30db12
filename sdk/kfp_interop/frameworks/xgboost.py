"""XGBoost: ``XGBClassifier`` / ``XGBRegressor`` (one thread, seeded), saved as XGBoost's
own JSON model; warm start continues a saved booster on new rows."""

from __future__ import annotations

from typing import Any

from kfp_interop.errors import ModelFileError, UnsupportedModelError
from kfp_interop.files import atomic_path
from kfp_interop.frameworks.base import (ForeignModel, TabularFramework, both_tasks,
                                         check_task, with_categories)
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
        if self.categories(model):
            model.set_params(enable_categorical=True)
        return model, None

    def dask_fit(self, model: Any, client: Any, X, y) -> Any:
        """XGBoost's own Dask estimators (``xgboost.dask.DaskXGBClassifier``/``Regressor``,
        Rabit allreduce across the Dask workers); the booster comes back as the plain
        ``XGBClassifier``/``XGBRegressor`` through XGBoost's own JSON model (which keeps
        the scikit-learn attributes)."""
        import os
        import tempfile

        import xgboost
        import xgboost.dask

        cls = (xgboost.dask.DaskXGBClassifier if isinstance(model, xgboost.XGBClassifier)
               else xgboost.dask.DaskXGBRegressor)
        params = model.get_params()
        params.pop("n_jobs", None)
        distributed = cls(**params)
        distributed.client = client
        distributed.fit(X, y)
        local = type(model)(**model.get_params())
        with tempfile.TemporaryDirectory(prefix="kfp-interop-xgb-") as tmp:
            path = os.path.join(tmp, "model.json")
            distributed.save_model(path)
            local.load_model(path)
        return local

    def categories(self, model: Any) -> dict[int, list]:
        """The categories XGBoost (3.1 and newer) stores for a model trained on pandas
        ``category`` columns (``enable_categorical=True``).

        Raises:
            UnsupportedModelError: categorical features without stored categories (a
                model saved by an older XGBoost): the values' codes are unknown.
        """
        booster = model.get_booster() if hasattr(model, "get_booster") else model
        if "c" not in (booster.feature_types or []):
            return {}
        try:
            stored = booster.get_categories(export_to_arrow=True).to_arrow() or []
        except Exception:  # noqa: BLE001 - older XGBoost: no such method or no categories
            stored = []
        found = {i: values.to_pylist() for i, (_name, values) in enumerate(stored)
                 if values is not None}
        if not found:
            raise UnsupportedModelError(
                "The XGBoost model splits on categorical features but does not store "
                "their categories (saved by XGBoost older than 3.1), so the codes its "
                "trees split on cannot be mapped from values. Save it again with XGBoost "
                ">= 3.1 from the model trained on the DataFrame, or one-hot encode those "
                "columns.")
        return found

    def predict_proba(self, model: Any, X) -> Any:
        return model.predict_proba(self._rows(model, X))

    def predict(self, model: Any, X) -> Any:
        return model.predict(self._rows(model, X))

    def _rows(self, model: Any, X):
        categories = self.categories(model)
        if not categories:
            return X
        return with_categories(X, categories, model.get_booster().feature_names)

    def read_foreign(self, path: str, *, task: str = "", n_features: int | None = None,
                     trusted_types: Any = None, architecture: str = "",
                     init_args: dict | None = None) -> ForeignModel:
        """An XGBoost model in its JSON or UBJSON format (``Booster.save_model`` or an
        estimator's ``save_model``); the task comes from its objective."""
        import json

        import xgboost

        try:
            booster = xgboost.Booster(model_file=path)
        except xgboost.core.XGBoostError as e:
            first = str(e).splitlines()[0] if str(e) else ""
            raise ModelFileError(f"{path!r} is not an XGBoost JSON/UBJ model ({first}). Save "
                                 "it with save_model('model.json') or '.ubj'.") from e
        learner = json.loads(booster.save_config())["learner"]
        objective = learner["objective"]["name"]
        found = ("classification" if objective.startswith(("binary:", "multi:")) else
                 "regression" if objective.startswith(("reg:", "count:", "survival:"))
                 else "")
        if not found:
            raise UnsupportedModelError(f"{path!r} has objective {objective!r}: kfp-interop "
                                        "exports classifiers and regressors (not ranking).")
        if objective == "multi:softmax":
            raise UnsupportedModelError(
                f"{path!r} has objective 'multi:softmax', which returns classes, not "
                "probabilities: train with 'multi:softprob' (what XGBClassifier uses).")
        task = check_task(task, found, path)
        model, _ = self.load(path, task=task)
        n_classes = None
        if task == "classification":
            n_classes = max(2, int(learner["learner_model_param"].get("num_class", 0) or 0))
        names = booster.feature_names
        ext = path.rsplit(".", 1)[-1].lower()
        return ForeignModel(model, task, format="xgboost-ubj" if ext == "ubj" else
                            "xgboost-json", estimator=f"xgboost.Booster({objective})",
                            n_features=booster.num_features(), n_classes=n_classes,
                            feature_names=list(names) if names else None)

    def warm_start(self, base: Any, X, y, *, task: str, n_estimators: int) -> Any:
        """A new model: the base booster's trees plus ``n_estimators`` more fitted on
        ``(X, y)`` (``xgb_model=`` the base booster), with the base's parameters."""
        params = {**base.get_params(), "n_estimators": n_estimators}
        model = self._class(task)(**params)
        model.fit(X, y, xgb_model=base.get_booster())
        return model

    @staticmethod
    def trees(model: Any) -> int:
        return model.get_booster().num_boosted_rounds()

    def base_summary(self, model: Any) -> dict[str, Any]:
        return {"trees": self.trees(model)}


register_framework(XGBoostFramework())
