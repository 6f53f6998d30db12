"""The model folder contract between stages (a KFP ``Model`` artifact's folder): the
model file(s) and ``model_meta.json``, the exactly typed context every later stage needs
(how it was trained, on what data, its native file and, after export, its parity).
KFP artifact metadata would turn ints into floats, so the facts travel in the folder.

:class:`ModelMeta` is that context as a typed, validated object; :func:`write_model_meta`
is its one writer and :func:`read_model_meta` its one reader (a folder's
``model_meta.json``, or the Model artifact's metadata of a model from your own
component, ``docs/model-artifact.md``). Stages read attributes, never keys."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any

from kfp_interop.constants import MODEL_META_FILENAME, ONNX_FILENAME
from kfp_interop.errors import InvalidInputError
from kfp_interop.files import atomic_write_json

__all__ = ["ModelMeta", "read_model_meta", "write_model_meta", "has_model_meta", "CONTRACT_KEYS"]

#: What a Model artifact from your own component must say about itself (in
#: ``model_meta.json`` in its folder, or as the artifact's metadata); docs/model-artifact.md.
CONTRACT_KEYS = ("framework", "task", "feature_names")

#: the training facts the record carries as ``training`` (all of the required ones, or
#: none: the record's origin is then ``exported``)
_TRAINING_KEYS = ("dataset", "data_sha256", "rows", "train_rows", "test_rows", "seed",
                  "hyperparameters", "metrics", "engine")
_REQUIRED_TRAINING = ("dataset", "data_sha256", "rows", "seed", "hyperparameters", "metrics")
#: long facts kept in the folder but out of the artifact's metadata (the Metrics and
#: ClassificationMetrics artifacts show them)
_FOLDER_ONLY = ("history", "roc_curve")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TASKS = ("classification", "regression")


@dataclasses.dataclass(frozen=True)
class ModelMeta:
    """What a model folder says about its model. Written by the training stages,
    extended by export (``format`` .. ``parity``); ``None`` = not known."""

    framework: str
    task: str
    feature_names: list[str]
    class_labels: list[str] | None = None
    target_name: str | None = None
    #: the feature columns holding text (the exported graph takes them as BYTES)
    text_columns: list[str] = dataclasses.field(default_factory=list)
    framework_version: str | None = None
    estimator: str | None = None
    hyperparameters: dict[str, Any] | None = None
    seed: int | None = None
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    dataset: str | None = None
    data_sha256: str | None = None
    rows: int | None = None
    train_rows: int | None = None
    test_rows: int | None = None
    native_format: str | None = None
    native_file: str | None = None
    native_sha256: str | None = None
    origin: dict[str, Any] = dataclasses.field(
        default_factory=lambda: {"kind": "exported", "source": "a model artifact"})
    lineage: dict[str, Any] | None = None
    federated: dict[str, Any] | None = None
    #: engine=dask: where it trained (``name``, ``partitions``, ``workers``, ...)
    engine: dict[str, Any] | None = None
    #: per-epoch rows of a network's training
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: a binary classifier's ROC curve on the held-out rows (fpr, tpr, thresholds)
    roc_curve: dict[str, Any] | None = None
    # after export
    format: str | None = None
    file: str | None = None
    requested_opset: int | None = None
    opsets: dict[str, int] | None = None
    parity: dict[str, Any] | None = None
    #: after optimize: the record's ``optimization`` block (``parity`` then compares the
    #: optimized graph with the exported one)
    optimization: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        _check(self)

    @classmethod
    def trained(cls, data_meta: dict[str, Any], *, framework: str, framework_version: str,
                estimator: str, task: str, hyperparameters: dict, seed: int, metrics: dict,
                saved: dict, **extra: Any) -> "ModelMeta":
        """A trained model's context: how it was trained, on what data (the split's
        metadata) and its native file (what ``save_native`` returned); ``extra`` sets
        further fields (``lineage``, ``federated``, ``history``, ``roc_curve``)."""
        return cls(
            framework=framework, framework_version=framework_version, estimator=estimator,
            task=task, hyperparameters=hyperparameters, seed=seed, metrics=metrics,
            feature_names=list(data_meta["feature_names"]),
            class_labels=data_meta.get("class_labels"), target_name=data_meta["target_name"],
            dataset=data_meta["source"], data_sha256=data_meta["data_sha256"],
            rows=data_meta["rows"], train_rows=data_meta["train_rows"],
            test_rows=data_meta["test_rows"], native_format=saved["format"],
            native_file=saved["file"], native_sha256=saved["sha256"],
            origin={"kind": "trained", "source": "kfp-interop"},
            text_columns=list(data_meta.get("text_columns") or []), **extra)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str, classes_required: bool = False
                  ) -> "ModelMeta":
        """The context from JSON-shaped ``data`` (``where`` names its source in errors;
        ``classes_required``: a classifier must name its classes).
        Integral floats become ints (KFP artifact metadata stores numbers as floats),
        feature names and class labels become strings; keys this version does not know
        are left out.

        Raises:
            InvalidInputError: a required fact is missing or a fact has the wrong type
                (named, with its value).
        """
        if not isinstance(data, dict):
            raise InvalidInputError(f"{where}: expected a JSON object, got "
                                    f"{type(data).__name__}.")
        missing = [k for k in CONTRACT_KEYS if not data.get(k)]
        if (classes_required and data.get("task") == "classification"
                and not data.get("class_labels")):
            missing.append("class_labels")
        if missing:
            raise InvalidInputError(
                f"{where} lacks {missing}: a model must say its framework, task, "
                "feature_names (input order) and, for classification, class_labels "
                "(probability column order). See docs/model-artifact.md.")
        known = {f.name: f for f in dataclasses.fields(cls)}
        values = {}
        for key, value in data.items():
            if key not in known or value is None:
                continue
            if key in _INTS and isinstance(value, float) and value.is_integer():
                value = int(value)
            elif key in ("feature_names", "class_labels", "text_columns") and isinstance(
                    value, (list, tuple)):
                value = [v if isinstance(v, str) else _text(v, key, where) for v in value]
            values[key] = value
        try:
            return cls(**values)
        except InvalidInputError as e:
            raise InvalidInputError(f"{where}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-shaped context (unknown facts left out)."""
        return {k: v for k, v in dataclasses.asdict(self).items()
                if v is not None and not (k in ("text_columns", "history") and not v)}

    def artifact_metadata(self) -> dict[str, Any]:
        """The context as a Model artifact's metadata (the per-epoch history and the ROC
        curve stay in the folder)."""
        return {k: v for k, v in self.to_dict().items() if k not in _FOLDER_ONLY}

    def replace(self, **changes: Any) -> "ModelMeta":
        """A copy with ``changes`` (checked like the original)."""
        return dataclasses.replace(self, **changes)

    def exported(self, *, opset: int, opsets: dict[str, int], parity: dict[str, Any]
                 ) -> "ModelMeta":
        """The context of this model's ONNX export (``model.onnx``, its opsets, the
        parity gate's report)."""
        return self.replace(format="onnx", file=ONNX_FILENAME, requested_opset=opset,
                            opsets=dict(opsets), parity=dict(parity))

    @property
    def parity_passed(self) -> bool:
        return bool(self.parity and self.parity.get("passed"))

    def training(self) -> dict[str, Any] | None:
        """The record's ``training`` block: what kfp-interop's training knows (a model
        from your own component may say it too), when every required fact is known."""
        known = {k: getattr(self, k) for k in _TRAINING_KEYS if getattr(self, k) is not None}
        return known if set(_REQUIRED_TRAINING) <= set(known) else None

    def check_exportable(self, where: str) -> None:
        """Raises InvalidInputError when a classifier does not name its classes (the
        record's probability columns)."""
        if self.task == "classification" and not self.class_labels:
            raise InvalidInputError(
                f"{where} is a classifier that does not name its class_labels (the "
                "probability columns in order, scikit-learn's classes_): state them in "
                "its metadata. See docs/model-artifact.md.")


_INTS = ("seed", "rows", "train_rows", "test_rows", "requested_opset")
#: field -> the JSON types it takes (beside ``None`` for the optional ones)
_TYPES: dict[str, tuple[type, ...]] = {
    "framework": (str,), "task": (str,), "feature_names": (list,), "class_labels": (list,),
    "target_name": (str,), "text_columns": (list,), "framework_version": (str,),
    "estimator": (str,), "hyperparameters": (dict,), "seed": (int,), "metrics": (dict,),
    "dataset": (str,), "data_sha256": (str,), "rows": (int,), "train_rows": (int,),
    "test_rows": (int,), "native_format": (str,), "native_file": (str,),
    "native_sha256": (str,), "origin": (dict,), "lineage": (dict,), "federated": (dict,),
    "engine": (dict,),
    "history": (list,), "roc_curve": (dict,), "format": (str,), "file": (str,),
    "requested_opset": (int,), "opsets": (dict,), "parity": (dict,),
    "optimization": (dict,)}


def _text(value: Any, key: str, where: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(int(value) if isinstance(value, float) and value.is_integer() else value)
    raise InvalidInputError(f"{where}: {key} holds {value!r}; names are text.")


def _check(meta: ModelMeta) -> None:
    for f in dataclasses.fields(meta):
        value = getattr(meta, f.name)
        if value is None and f.name not in CONTRACT_KEYS:
            continue
        if not isinstance(value, _TYPES[f.name]) or isinstance(value, bool):
            raise InvalidInputError(
                f"{f.name}={value!r} is a {type(value).__name__}; it must be "
                f"{' or '.join(t.__name__ for t in _TYPES[f.name])}.")
    if meta.task not in _TASKS:
        raise InvalidInputError(f"task {meta.task!r} must be classification or regression "
                                "(other models enter as ONNX through adopt).")
    for key in ("feature_names", "class_labels", "text_columns"):
        names = getattr(meta, key) or []
        if not all(isinstance(n, str) for n in names):
            raise InvalidInputError(f"{key}={names!r} must be a list of strings.")
    if not meta.feature_names:
        raise InvalidInputError("feature_names is empty: name the model's input columns.")
    if len(set(meta.feature_names)) != len(meta.feature_names):
        raise InvalidInputError(f"feature_names={meta.feature_names!r} repeats a name.")
    stray = [c for c in meta.text_columns if c not in meta.feature_names]
    if stray:
        raise InvalidInputError(f"text_columns {stray} are not among feature_names "
                                f"{meta.feature_names}.")
    for key in ("native_sha256", "data_sha256"):
        value = getattr(meta, key)
        if value is not None and not _SHA256.fullmatch(value):
            raise InvalidInputError(f"{key}={value!r} is not a sha256 (64 lowercase hex "
                                    "digits).")
    if not all(isinstance(row, dict) for row in meta.history):
        raise InvalidInputError("history must be a list of objects (one per epoch).")


def write_model_meta(directory: str, meta: ModelMeta) -> None:
    """Write ``meta`` as ``directory/model_meta.json`` (atomically)."""
    if not isinstance(meta, ModelMeta):
        raise TypeError(f"write_model_meta takes a ModelMeta, not {type(meta).__name__}")
    atomic_write_json(os.path.join(directory, MODEL_META_FILENAME), meta.to_dict())


def has_model_meta(directory: str) -> bool:
    """Whether ``directory`` is a model folder with its ``model_meta.json``."""
    return os.path.isfile(os.path.join(directory, MODEL_META_FILENAME))


def read_model_meta(directory: str, artifact_metadata: dict[str, Any] | None = None
                    ) -> ModelMeta:
    """The context a model folder carries: its ``model_meta.json`` when kfp-interop (or
    you) wrote one, else, when given, the Model artifact's metadata (a model from your
    own component).

    Raises:
        InvalidInputError: neither is there, or what is there lacks the framework, task
            or feature names, or has a fact of the wrong type (named).
    """
    path = os.path.join(directory, MODEL_META_FILENAME) if os.path.isdir(directory) else ""
    if path and os.path.isfile(path):
        try:
            with open(path) as f:
                data = json.load(f)
        except ValueError as e:
            raise InvalidInputError(f"{path!r} is not JSON ({e}).") from None
        return ModelMeta.from_dict(data, where=repr(path))
    if artifact_metadata is None:
        raise InvalidInputError(f"{directory!r} holds no {MODEL_META_FILENAME}: pass a model "
                                "produced by kfp-interop's train or export_onnx step.")
    meta = dict(artifact_metadata)
    if "origin" not in meta:
        meta["origin"] = {"kind": "exported", "source": meta.get("source", "a model artifact")}
    return ModelMeta.from_dict(
        meta, where=f"The model at {directory!r} has no {MODEL_META_FILENAME} and its "
                    "artifact metadata", classes_required=True)
