"""scikit-learn: named estimators or a ``module:Class`` estimator from an allowed module
(:mod:`kfp_interop.trust`), a median imputer and a StandardScaler in front when asked
(both exported into the ONNX graph), saved with ``skops``.

skops loads only the types it trusts itself (scikit-learn's estimators, NumPy arrays)
and those it is told to trust. We tell it an exact list: :data:`SKOPS_TRUSTED_TYPES`
(what our trainers' models also hold; a test trains every built-in estimator and checks
the list covers it), plus exact names from ``$KFP_INTEROP_TRUSTED_TYPES`` or the
caller. Any other type is refused, named, before anything is built from the file."""

from __future__ import annotations

from typing import Any

from kfp_interop.errors import (InvalidInputError, ModelFileError, UnsupportedModelError,
                                UntrustedModelError)
from kfp_interop.files import atomic_writer
from kfp_interop.frameworks.base import (ForeignModel, TabularFramework, both_tasks,
                                         check_task)
from kfp_interop.frameworks.registry import register_framework
from kfp_interop.trust import TRUSTED_TYPES_ENV, import_class, trusted_types

__all__ = ["SklearnFramework", "SKOPS_TRUSTED_TYPES"]

#: Types skops does not trust by default that kfp-interop's scikit-learn models hold, and
#: HistGradientBoosting's trees (a scikit-learn class of arrays only, as Tree is).
SKOPS_TRUSTED_TYPES = frozenset({"numpy.dtype", "sklearn.tree._tree.Tree",
                                 "sklearn.ensemble._hist_gradient_boosting.predictor."
                                 "TreePredictor"})


def _skops_io():
    """``skops.io``, imported without PyTorch. Importing it lists scikit-learn's
    estimators (``sklearn.utils.all_estimators``), and the package walk behind that
    imports every subpackage, ``sklearn.externals.array_api_compat.torch`` too, which
    imports torch when it is installed: over a second in every task that saves or loads a
    scikit-learn model and never touches torch. Blocking that one subpackage while skops
    loads makes the walk skip it (``pkgutil.walk_packages`` ignores packages that fail
    to import); the block is lifted right after, so array-API dispatch to torch still
    imports it when asked."""
    import sys

    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    name = "sklearn.externals.array_api_compat.torch"
    blocked = name not in sys.modules
    if blocked:
        sys.modules[name] = None  # type: ignore[assignment] - import raises ImportError
    try:
        import skops.io
    finally:
        if blocked and sys.modules.get(name, 0) is None:
            del sys.modules[name]
    return skops.io


# -- federated: a logistic regression trained by SGD, averaged by its coefficients ---------

def _sgd(lr: float, seed: int):
    from sklearn.linear_model import SGDClassifier

    # a constant step: the same update rule in every round, whatever the client's t_
    return SGDClassifier(loss="log_loss", learning_rate="constant", eta0=lr, alpha=1e-4,
                         random_state=seed)


def _sgd_holding(spec: Any, weights: list[Any], *, lr: float = 0.01, seed: int = 0,
                 X=None, y=None):
    """An SGDClassifier holding ``weights`` (fitted once on a row to set its classes,
    then given the weights)."""
    import numpy as np

    model = _sgd(lr, seed)
    classes = np.arange(spec.n_classes)
    if X is None:
        X, y = np.zeros((1, spec.n_features)), np.zeros(1, dtype=np.int64)
    model.partial_fit(X[:1], y[:1], classes=classes)
    model.coef_ = np.array(weights[0], dtype=np.float64)
    model.intercept_ = np.array(weights[1], dtype=np.float64)
    return model


class FederatedLogistic:
    """The ``federated`` capability of :class:`SklearnFramework`: a logistic regression
    (``architecture="logistic"``) trained by SGD, averaged by its coefficients."""

    #: the scikit-learn models a federation can train
    federated_architectures = ("logistic",)

    def federates(self, architecture: str) -> bool:
        return architecture in self.federated_architectures

    def federated_arrays(self, architecture, n_features, n_classes, init_args):
        if init_args:
            raise InvalidInputError("init_args apply to PyTorch architectures; 'logistic' "
                                    "takes none.")
        rows = 1 if n_classes == 2 else n_classes
        return ("coef", "intercept"), ((rows, n_features), (rows,))

    def federated_initial(self, spec, *, seed):
        import numpy as np

        return [np.zeros(s, dtype=np.float64) for s in spec.shapes]  # as sklearn starts

    def federated_train(self, spec, weights, X, y, *, epochs, lr, batch_size, optimizer,
                        seed, proximal_mu):
        import numpy as np

        if proximal_mu:
            raise InvalidInputError("FedProx's proximal term (proximal_mu) is implemented "
                                    "for PyTorch models; the linear model trains without it.")
        model = _sgd_holding(spec, weights, lr=lr, seed=seed, X=X, y=y)
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            order = rng.permutation(len(y))
            model.partial_fit(X[order], y[order])
        accuracy = float(np.mean(model.predict(X) == y))
        return [model.coef_.copy(), model.intercept_.copy()], {"accuracy": accuracy}

    def federated_model(self, spec, weights):
        from kfp_interop.frameworks.native import NativeModel

        return NativeModel(_sgd_holding(spec, weights), "sklearn", "classification")

    def federated_estimator(self, spec):
        return "SGDClassifier (federated)"



class SklearnFramework(FederatedLogistic, TabularFramework):
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

        cls = import_class(estimator, base=self.estimator_base(), what="estimator",
                           base_name="scikit-learn estimator")
        try:
            probe = cls()
        except TypeError as e:
            raise InvalidInputError(f"Estimator {estimator!r} cannot be created without "
                                    f"arguments: {e}") from e
        ok = is_classifier(probe) if task == "classification" else is_regressor(probe)
        if not ok:
            raise InvalidInputError(f"Estimator {estimator!r} is not a {task} estimator.")
        return cls

    def check_preprocessing(self, *, scaler: bool, impute: bool,
                            text_columns: list[str] = ()) -> None:
        return None  # all of it goes into the pipeline, and into the ONNX graph

    def wrap(self, model: Any, *, scaler: bool, impute: bool,
             text_columns: list[str] = (), feature_names: list[str] = ()) -> Any:
        """Imputer and scaler in front of the numbers; with text columns, a
        ``ColumnTransformer`` one-hot encodes them (an unseen category at inference
        encodes as all zeros: ``handle_unknown="ignore"``) beside the numbers."""
        from sklearn.pipeline import Pipeline

        steps = []
        if impute:
            from sklearn.impute import SimpleImputer

            steps.append(("imputer", SimpleImputer(strategy="median")))
        if scaler:
            from sklearn.preprocessing import StandardScaler

            steps.append(("scaler", StandardScaler()))
        if text_columns:
            from sklearn.compose import ColumnTransformer
            from sklearn.preprocessing import OneHotEncoder

            numbers = [c for c in feature_names if c not in text_columns]
            columns = ColumnTransformer(
                [("text", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                  list(text_columns)),
                 ("numbers", Pipeline(steps) if steps else "passthrough", numbers)])
            return Pipeline([("columns", columns), ("model", model)])
        if not steps:
            return model
        return Pipeline(steps + [("model", model)])

    def predict_proba(self, model: Any, X) -> Any:
        return model.predict_proba(self._rows(model, X))

    def predict(self, model: Any, X) -> Any:
        return model.predict(self._rows(model, X))

    @staticmethod
    def _rows(model: Any, X):
        """Rows of numbers as the DataFrame a model fitted on one expects (a
        ColumnTransformer selecting columns by name takes nothing else)."""
        names = getattr(model, "feature_names_in_", None)
        if names is None or hasattr(X, "columns"):
            return X
        import pandas as pd

        return pd.DataFrame(X, columns=list(names))

    def save(self, model: Any, path: str, *, spec: Any = None) -> None:
        from kfp_interop.frameworks.canonical import canonical_zip

        skops_io = _skops_io()

        with atomic_writer(path) as f:  # the same model, the same bytes
            f.write(canonical_zip(skops_io.dumps(model)))

    def load(self, path: str, *, task: str, trusted_types: Any = None) -> tuple[Any, Any]:
        extra_trusted = trusted_types
        return self._load(path, extra_trusted)

    def read_foreign(self, path: str, *, task: str = "", n_features: int | None = None,
                     trusted_types: Any = None, architecture: str = "",
                     init_args: dict | None = None) -> ForeignModel:
        """A scikit-learn estimator or Pipeline saved with ``skops.io.dump`` (pickle and
        joblib files are refused: loading them runs code)."""
        from sklearn.base import is_classifier, is_regressor

        model, _ = self._load(path, trusted_types)
        if not hasattr(model, "predict"):
            raise ModelFileError(f"{path!r} holds a {type(model).__name__}, not a fitted "
                                 "scikit-learn estimator or Pipeline.")
        found = ("classification" if is_classifier(model) else
                 "regression" if is_regressor(model) else "")
        task = check_task(task, found, path)
        if task not in ("classification", "regression"):
            raise InvalidInputError(f"{path!r} holds a {type(model).__name__} that is neither "
                                    "a classifier nor a regressor: pass --task.")
        labels = None
        if task == "classification":
            classes = getattr(model, "classes_", None)
            if classes is None or not hasattr(model, "predict_proba"):
                raise UnsupportedModelError(
                    f"The classifier in {path!r} has no classes_/predict_proba: kfp-interop "
                    "classifiers return class probabilities.")
            labels = [str(c) for c in classes]
        names = getattr(model, "feature_names_in_", None)
        final = TabularFramework.final_estimator(model)
        estimator = type(final).__name__
        if hasattr(model, "steps"):
            estimator = f"Pipeline({', '.join(type(s).__name__ for _, s in model.steps)})"
        return ForeignModel(
            model, task, format="skops", estimator=estimator,
            n_features=getattr(model, "n_features_in_", None),
            n_classes=len(labels) if labels else None, class_labels=labels,
            feature_names=[str(n) for n in names] if names is not None else None)

    @staticmethod
    def _load(path: str, extra_trusted: Any) -> tuple[Any, Any]:
        skops_io = _skops_io()
        trusted = SKOPS_TRUSTED_TYPES | trusted_types(extra_trusted)
        try:
            untrusted = skops_io.get_untrusted_types(file=path)
        except Exception as e:  # noqa: BLE001 - skops raises many types on a bad file
            raise ModelFileError(
                f"{path!r} is not a readable skops model file ({e}). Save scikit-learn "
                "models with skops.io.dump; pickle and joblib files are refused (loading "
                "them runs code).") from e
        foreign = sorted(t for t in untrusted if t not in trusted)
        if foreign:
            raise UntrustedModelError(
                f"Model file {path!r} holds types kfp-interop does not trust: {foreign}. "
                "Loading would build them from the file. If you trust this file, list "
                f"these exact names in ${TRUSTED_TYPES_ENV} (comma-separated) or the "
                "step's trusted_types.")
        return skops_io.load(path, trusted=sorted(untrusted)), None


register_framework(SklearnFramework())

