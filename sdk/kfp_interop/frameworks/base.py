"""What kfp-interop knows about a framework, as a class each framework module fills in.

A :class:`Framework` owns its native (pre-ONNX) format: save, load, predict. A
:class:`TabularFramework` also owns its estimators by name and task and how to build
one; a :class:`DeepFramework` owns its architectures and its training loop. Callers ask
the registry (:data:`kfp_interop.frameworks.FRAMEWORKS`), never ``if framework == ...``.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
from typing import Any, Callable, ClassVar

from kfp_interop.errors import InvalidInputError, UnknownNameError, UnsupportedModelError
from kfp_interop.trust import import_class

__all__ = ["Framework", "TabularFramework", "DeepFramework", "ForeignModel", "both_tasks",
           "check_task", "OUTPUT_KINDS", "probabilities_from", "with_categories"]

#: what the one output of a network made elsewhere holds: class probabilities (a softmax
#: at its end), logits (no softmax), P(class 1) of a binary classifier (one column, a
#: sigmoid at its end), or regression values
OUTPUT_KINDS = ("probabilities", "logits", "sigmoid", "values")


def probabilities_from(out, kind: str):
    """Class probabilities ``(n, n_classes)`` from a network's output of ``kind``."""
    import numpy as np

    out = np.asarray(out, dtype=np.float64)
    if kind == "logits":
        e = np.exp(out - out.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if kind == "sigmoid":
        p = out.reshape(-1, 1)
        return np.column_stack([1 - p, p])
    return out


def both_tasks(classifier: str, regressor: str) -> dict[str, str]:
    """An estimator entry with a ``module:Class`` for each task."""
    return {"classification": classifier, "regression": regressor}


@dataclasses.dataclass
class ForeignModel:
    """A model file made outside kfp-interop, read as data, with what the file itself
    says about the model (``None``: the file does not say; the sample or the user does).

    Attributes:
        model: the loaded model (what :meth:`Framework.predict_proba` takes).
        task: ``classification`` or ``regression``.
        format: the file's format, e.g. ``xgboost-ubj`` (recorded in the record's origin).
        estimator: what the model is, e.g. ``Pipeline(ColumnTransformer, LogisticRegression)``.
        spec: what rebuilds it (PyTorch: its TorchSpec), or None.
        n_features: the number of input columns the model takes.
        n_classes: the number of classes (classification).
        class_labels: the class names in probability column order.
        feature_names: the input columns by name, in order.
    """

    model: Any
    task: str
    format: str
    estimator: str
    spec: Any = None
    n_features: int | None = None
    n_classes: int | None = None
    class_labels: list[str] | None = None
    feature_names: list[str] | None = None


def check_task(stated: str, found: str, path: str) -> str:
    """The task a model file does: ``found`` (from the file) unless the user stated one,
    which must agree.

    Raises:
        InvalidInputError: the user stated another task than the file's.
    """
    if stated and found and stated != found:
        raise InvalidInputError(f"{path!r} holds a {found} model, not {stated}: drop --task "
                                f"or pass --task {found}.")
    return found or stated


def with_categories(X, categories: dict[int, list], names: list[str] | None = None):
    """The rows as a DataFrame whose category columns (by position) are pandas
    categories with the model's categories, which LightGBM and XGBoost map to the
    codes they trained on (a value not among them becomes missing); its columns are
    named ``names`` when given (what the model calls them)."""
    import numpy as np
    import pandas as pd

    frame = X.copy() if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
    frame.columns = list(names) if names else [str(c) for c in frame.columns]
    for i, values in categories.items():
        column = frame.columns[i]
        data = frame[column]
        if any(isinstance(v, str) for v in values):
            data = data.astype(str)
        frame[column] = pd.Categorical(data, categories=values)
    return frame


#: capabilities a framework may have beyond save, load and predict -> the method of
#: :class:`Framework` that provides it. A step that needs one asks the registry
#: (:func:`kfp_interop.frameworks.require_capability`), never a framework's name.
CAPABILITIES: dict[str, str] = {"warm_start": "warm_start", "finetune": "finetune_head",
                                "federated": "federated_train", "dask": "dask_fit"}


class Framework:
    """One framework's native side: format, save, load, predict.

    Subclasses set the class attributes and implement :meth:`save` and :meth:`load`.
    """

    #: registry key, e.g. ``"sklearn"``
    name: ClassVar[str] = ""
    #: ``"tabular"`` (train from a table with an estimator) or ``"deep"`` (networks)
    family: ClassVar[str] = "tabular"
    #: distributions to read the installed version from, first found wins (default: name)
    distributions: ClassVar[tuple[str, ...]] = ()
    #: name of the safe native format and its file inside a model folder
    native_format: ClassVar[str] = ""
    native_file: ClassVar[str] = ""

    def version(self) -> str:
        """The installed version of the framework (``"unknown"`` if not installed)."""
        for dist in self.distributions or (self.name,):
            try:
                return importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
        return "unknown"

    def choices(self) -> list[str]:
        """What the train components can build: estimator or architecture names."""
        return []

    def estimator_of(self, model: Any) -> str:
        """What a loaded model is, for the record (the last step of a pipeline)."""
        return type(model.steps[-1][1] if hasattr(model, "steps") else model).__name__

    def locate(self, path: str) -> str:
        """The native file in a model folder, or ``path`` itself when it is the file."""
        import os

        return os.path.join(path, self.native_file) if os.path.isdir(path) else path

    def save(self, model: Any, path: str, *, spec: Any = None) -> None:
        """Write ``model`` in the native format to ``path`` (atomically)."""
        raise NotImplementedError

    def load(self, path: str, *, task: str, trusted_types: Any = None) -> tuple[Any, Any]:
        """Read a model saved by :meth:`save`, as data (no code from the file runs);
        returns ``(model, spec)``. ``trusted_types`` are exact type names the caller
        trusts beyond the framework's own (formats that can name types only).

        Raises:
            ModelFileError: the file is unreadable or refused (untrusted content).
        """
        raise NotImplementedError

    def same_feature(self, model_name: str, column: str) -> bool:
        """Whether a table's ``column`` is the feature a model file calls
        ``model_name`` (equal names; a framework that rewrites names when it trains
        says how)."""
        return model_name == column

    def read_foreign(self, path: str, *, task: str = "", n_features: int | None = None,
                     trusted_types: Any = None, architecture: str = "",
                     init_args: dict | None = None) -> ForeignModel:
        """Read a model file (or folder) made outside kfp-interop in this framework's
        formats, as data (the trust rules of :meth:`load` apply).

        Args:
            task: what the user says the model does ("" = what the file says).
            n_features: the number of feature columns of the sample (for formats that
                do not store it, e.g. a PyTorch state dict).
            architecture, init_args: what rebuilds a model whose file holds only weights.

        Raises:
            ModelFileError: the file is not in this framework's format, or refused.
            UnsupportedModelError: the framework reads no files made elsewhere, or the
                model does something kfp-interop does not export (e.g. ranking).
        """
        raise UnsupportedModelError(f"Framework {self.name!r} reads no model files made "
                                    "elsewhere.")

    def categories(self, model: Any) -> dict[int, list]:
        """The columns a model takes as categories, mapped to codes by the framework
        itself before its trees see them (LightGBM's and XGBoost's pandas ``category``
        columns): ``{feature index: category values in code order}``. The exported
        graph takes the values and maps them to the same codes (an unknown value as a
        missing one). Empty for most models."""
        return {}

    # -- capabilities beyond save/load/predict (see CAPABILITIES) --------------------------
    def warm_start(self, base: Any, X, y, *, task: str, n_estimators: int) -> Any:
        """Capability ``warm_start``: a new model continuing ``base`` on ``(X, y)`` with
        ``n_estimators`` more rounds (the base's own parameters otherwise)."""
        raise NotImplementedError

    def dask_fit(self, model: Any, client: Any, X, y) -> Any:
        """Capability ``dask`` (``engine=dask``): fit the unfitted estimator ``model``
        (what :meth:`TabularFramework.build_estimator` made, with its hyperparameters)
        on the Dask collections ``X`` and ``y`` through the framework's own Dask
        interface on ``client``'s cluster; returns a fitted model of the type local
        training gives, so export, parity and serving run unchanged."""
        raise NotImplementedError

    # capability ``finetune``: a network with a backbone and a classification head
    def finetune_head(self, base: Any, n_classes: int, *, seed: int) -> Any:
        """Capability ``finetune``: the base network (a NativeModel) with a new,
        seeded head for ``n_classes`` on its backbone, the backbone frozen; returns the
        model to train. Frameworks with it also implement :meth:`unfreeze`,
        :meth:`n_inputs`, :meth:`finetuned` and :meth:`finetune_settings`, and to bring
        a base made elsewhere, :meth:`backbone_file`, :meth:`import_backbone` and
        :meth:`keep_backbone`."""
        raise NotImplementedError

    def unfreeze(self, model: Any) -> None:
        """(finetune) Make every layer of ``model`` trainable again."""
        raise NotImplementedError

    def n_inputs(self, base: Any) -> int:
        """(finetune) The number of features the base network (a NativeModel) takes."""
        raise NotImplementedError

    def finetuned(self, base: Any, model: Any, n_classes: int) -> Any:
        """(finetune) The fine-tuned ``model`` as a NativeModel, with what rebuilds it."""
        raise NotImplementedError

    def backbone_file(self, path: str) -> bool:
        """(finetune) Whether the file ``path`` is this framework's kind of pretrained
        model (by its content where the format allows: a copy may have lost its name)."""
        return False

    def import_backbone(self, path: str, *, n_features: int, architecture: str,
                        init_args: dict) -> ForeignModel:
        """(finetune) Read the file ``path`` as data into a base fine-tuning starts from
        (``architecture``/``init_args``: what rebuilds it, where the file does not say).

        Raises:
            InvalidInputError: it does not take ``n_features`` features, has no head to
                replace, or ``architecture`` does not apply.
        """
        raise NotImplementedError

    def keep_backbone(self, path: str, foreign: ForeignModel, model_dir: str) -> None:
        """(finetune) Put the file ``path`` as it is (its sha256 is the fine-tuned
        model's lineage) into ``model_dir`` under :attr:`native_file`, with whatever
        :meth:`load` needs beside it."""
        import os

        from kfp_interop.files import atomic_copy

        atomic_copy(path, os.path.join(model_dir, self.native_file))

    def finetune_settings(self, base: Any, base_estimator: str | None) -> dict[str, Any]:
        """(finetune) What a fine-tuned model's record says of its architecture
        (``base_estimator``: what the base model's folder calls it)."""
        return {}

    # capability ``federated``: a model as a list of arrays that a strategy averages.
    # ``spec`` is a kfp_interop.federated.FederatedSpec (architecture, sizes, init_args,
    # array names); ``weights`` a list of NumPy arrays in the spec's order.
    def federates(self, architecture: str) -> bool:
        """(federated) Whether this framework trains ``architecture`` in a federation."""
        return False

    def federated_arrays(self, architecture: str, n_features: int, n_classes: int,
                         init_args: dict) -> tuple[tuple, tuple]:
        """(federated) The names and shapes of the model's arrays."""
        raise NotImplementedError

    def federated_initial(self, spec: Any, *, seed: int) -> list[Any]:
        """(federated) The global model before round 1 (seeded)."""
        raise NotImplementedError

    def federated_train(self, spec: Any, weights: list[Any], X, y, *, epochs: int,
                        lr: float, batch_size: int, optimizer: str, seed: int,
                        proximal_mu: float) -> tuple[list[Any], dict]:
        """Capability ``federated``: a client's round from the global ``weights`` on its
        own rows: ``(new weights, {"accuracy"[, "loss"]})``. Frameworks with it also
        implement :meth:`federates`, :meth:`federated_arrays`,
        :meth:`federated_initial`, :meth:`federated_model`."""
        raise NotImplementedError

    def federated_model(self, spec: Any, weights: list[Any]) -> Any:
        """(federated) The model holding ``weights``, as a NativeModel."""
        raise NotImplementedError

    def federated_estimator(self, spec: Any) -> str:
        """(federated) What the record calls the federated model."""
        return f"{spec.architecture} (federated)"

    def base_summary(self, model: Any) -> dict[str, Any]:
        """What a lineage records of a base model beyond its file's sha256 (e.g. its
        number of trees); empty by default."""
        return {}

    def can(self, capability: str) -> bool:
        """Whether this framework has ``capability`` (one of :data:`CAPABILITIES`): its
        class implements the capability's method."""
        method = CAPABILITIES[capability]
        return getattr(type(self), method) is not getattr(Framework, method)

    def predict_proba(self, model: Any, X) -> Any:
        """(n, n_classes) class probabilities."""
        return model.predict_proba(X)

    def predict(self, model: Any, X) -> Any:
        """Regression values."""
        return model.predict(X)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} ({self.native_format})>"


class TabularFramework(Framework):
    """A framework that trains on a table with a named estimator."""

    family: ClassVar[str] = "tabular"
    #: estimator name -> {task: "module:Class"}
    estimators: ClassVar[dict[str, dict[str, str]]] = {}
    #: the estimator used when none is named ("" = the only one there is)
    default_estimator: ClassVar[str] = ""
    #: hyperparameters set unless the user gives them (e.g. one thread, quiet)
    estimator_defaults: ClassVar[dict[str, Any]] = {}

    def choices(self) -> list[str]:
        return self.estimator_names()

    def estimator_names(self, task: str | None = None) -> list[str]:
        return sorted(e for e, paths in self.estimators.items() if task is None or task in paths)

    def estimator_class(self, estimator: str, task: str) -> type:
        """The class of a named estimator for ``task``.

        Raises:
            UnknownNameError: no such estimator (the message lists known ones).
            InvalidInputError: the estimator does not do ``task``.
        """
        paths = self.estimators.get(estimator)
        if paths is None:
            raise UnknownNameError(f"Unknown estimator {estimator!r} for framework "
                                   f"{self.name!r}; known: {self.estimator_names()}.")
        if task not in paths:
            raise InvalidInputError(
                f"Estimator {estimator!r} does not do {task}; for {task} use one of "
                f"{self.estimator_names(task)}.")
        return import_class(paths[task], base=self.estimator_base(), what="estimator",
                            base_name="scikit-learn estimator")

    @staticmethod
    def estimator_base() -> type:
        """What every estimator class must derive from (scikit-learn's estimator API)."""
        from sklearn.base import BaseEstimator

        return BaseEstimator

    def check_preprocessing(self, *, scaler: bool, impute: bool,
                            text_columns: list[str] = ()) -> None:
        """Refuse preprocessing the framework does not put in front of its models."""
        if scaler:
            raise InvalidInputError(
                f"scaler=True applies to scikit-learn estimators; {self.name} trees do not "
                "need feature scaling. Drop the scaler or use framework='sklearn'.")
        if text_columns:
            raise InvalidInputError(
                f"Text column(s) {list(text_columns)}: {self.name} takes numbers only here. "
                "Use framework='sklearn' (text is one-hot encoded inside the ONNX graph), "
                "or encode the columns as numbers first.")

    def wrap(self, model: Any, *, scaler: bool, impute: bool,
             text_columns: list[str] = (), feature_names: list[str] = ()) -> Any:
        """The model with its preprocessing in front (none by default: trees handle NaN)."""
        return model

    def build_estimator(self, estimator: str, task: str, *,
                        hyperparameters: dict[str, Any] | None = None, seed: int = 42,
                        scaler: bool = False, impute: bool = False,
                        text_columns: list[str] = (), feature_names: list[str] = ()) -> Any:
        """An unfitted estimator (maybe inside a preprocessing pipeline).

        Raises:
            UnknownNameError: unknown estimator (the message lists known ones).
            InvalidInputError: estimator not fit for the task; bad hyperparameter names
                or values; no ``predict_proba`` for a classifier; unsupported
                preprocessing.
        """
        cls = self.estimator_class(estimator or self.default_estimator
                                   or next(iter(self.estimators)), task)
        hyperparameters = dict(hyperparameters or {})
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
        for key, value in self.estimator_defaults.items():
            hyperparameters.setdefault(key, value)
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
        self.check_preprocessing(scaler=scaler, impute=impute, text_columns=text_columns)
        return self.wrap(model, scaler=scaler, impute=impute, text_columns=text_columns,
                         feature_names=feature_names)

    @staticmethod
    def final_estimator(model: Any) -> Any:
        """The estimator at the end of a preprocessing pipeline (or the model itself)."""
        return model.steps[-1][1] if hasattr(model, "steps") else model


class DeepFramework(Framework):
    """A framework that trains networks: built-in architectures and a training loop."""

    family: ClassVar[str] = "deep"
    architectures: ClassVar[tuple[str, ...]] = ("mlp", "cnn")

    def choices(self) -> list[str]:
        return list(self.architectures)

    def build(self, architecture: str, n_features: int, n_classes: int, *,
              init_args: dict | None = None, seed: int = 42, backend: str = "") -> tuple:
        """An untrained network; returns ``(model, spec)`` (spec rebuilds it, or None)."""
        raise NotImplementedError

    def train(self, model: Any, X, y, *, epochs: int, batch_size: int, lr: float,
              optimizer: str, seed: int, X_val=None, y_val=None,
              on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
        """Seeded training; per-epoch ``{"epoch", "loss", "accuracy"[, "val_accuracy"]}``."""
        raise NotImplementedError

    def estimator_name(self, model: Any, architecture: str) -> str:
        return type(model).__name__
