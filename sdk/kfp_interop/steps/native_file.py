"""The export of a model file made outside kfp-interop: read it as data in its
framework's format, take the feature columns and classes from the file and the sample,
export it to ONNX behind the same parity gate as the pipelines, and write the model with
its record embedded and beside it (and the sample rows, which the smoke test sends).

What the model takes and returns, in order of trust: what the file says (scikit-learn's
``feature_names_in_`` and ``classes_``, XGBoost's and LightGBM's feature names), what the
user says (``labels``), what the sample says (its columns; its target's distinct values,
sorted as scikit-learn's and XGBoost's label encoders sort them), and last the class
indices ``0 .. n-1``.
"""

from __future__ import annotations

import os

from kfp_interop.constants import DEFAULT_OPSET, DEFAULT_TOLERANCE, ONNX_FILENAME
from kfp_interop.errors import InvalidInputError
from kfp_interop.steps.stage import stage

__all__ = ["export_file_step", "SAMPLE_ROWS"]

#: rows of the sample kept beside the model for the smoke test
SAMPLE_ROWS = 8


def _class_labels(found, *, stated: list[str], target, n_classes: int, path: str
                  ) -> list[str]:
    if stated:
        if len(stated) != n_classes:
            raise InvalidInputError(f"--labels names {len(stated)} classes {stated}; the model "
                                    f"{path!r} returns {n_classes} probabilities.")
        return stated
    if found:
        return found
    if target is not None:
        values = sorted(target.dropna().unique().tolist())
        if len(values) == n_classes:
            return [str(v) for v in values]
    return [str(i) for i in range(n_classes)]


def _feature_names(found, frame, *, fw, n_features, path: str, sample_path: str
                   ) -> list[str]:
    """The sample's columns that are the model's features, in the model's order: by
    name when the file names its features (as its framework writes names), else all of
    the sample's columns."""
    columns = list(frame.columns)
    if found:
        matched, missing = [], []
        for name in found:
            same = [c for c in columns if c == name] or [
                c for c in columns if fw.same_feature(name, c)]
            if len(same) > 1:
                raise InvalidInputError(
                    f"The model {path!r} takes a column {name!r}; the sample {sample_path!r} "
                    f"has several that are it: {same}. Keep one.")
            (matched if same else missing).append(same[0] if same else name)
        if missing:
            raise InvalidInputError(
                f"The model {path!r} takes columns {list(found)}; the sample {sample_path!r} "
                f"lacks {missing} (it has {columns}). Give a sample with the model's columns.")
        return matched
    if n_features is not None and len(columns) != n_features:
        raise InvalidInputError(
            f"The model {path!r} takes {n_features} features; the sample {sample_path!r} "
            f"has {len(columns)} columns {columns}. Name the label with --target-column "
            "and drop other columns.")
    return columns


@stage("out_dir")
def export_file_step(*, model_path: str, framework: str, sample_path: str, out_dir: str,
                     target_column: str = "", task: str = "", labels: str = "",
                     architecture: str = "", init_args: str = "",
                     name: str = "", version: str = "1", opset: int = DEFAULT_OPSET,
                     tolerance: float = DEFAULT_TOLERANCE, trusted_types: str = ""):
    """Convert ``model_path`` (a native model file or folder made elsewhere), prove
    parity on ``sample_path`` (CSV/Parquet with the feature columns, or ``.npy``/``.npz``
    rows) and write ``out_dir/model.onnx`` with the record, its sidecar and
    ``sample.npz``. An empty ``name`` derives one from the file name.

    Returns:
        The record.

    Raises:
        UnknownNameError: unknown framework.
        ModelFileError: the file is not the framework's format, holds untrusted types,
            or its weights do not load into the class.
        DatasetError, InvalidInputError: the sample does not fit the model (named).
        ParityError: the ONNX model predicts otherwise (nothing is written).
    """
    import numpy as np

    from kfp_interop.data import features_from_frame, model_inputs, read_sample
    from kfp_interop.data import text_columns_of
    from kfp_interop.export.adopt import SAMPLE_FILE, save_tensors
    from kfp_interop.frameworks import NativeModel, TabularFramework, get_framework
    from kfp_interop.metadata import save_metadata
    from kfp_interop.naming import check_name, name_from_path
    from kfp_interop.steps.export import export_checked, record_from_meta
    from kfp_interop.steps.model_dir import ModelMeta
    from kfp_interop.training import parse_hyperparameters

    if task not in ("", "classification", "regression"):
        raise InvalidInputError(f"task {task!r}: use classification or regression (or leave "
                                "it to the model file).")
    if not os.path.exists(model_path):
        raise InvalidInputError(f"Model file {model_path!r} does not exist.")
    args = parse_hyperparameters(init_args or "{}", what="init_args")
    fw = get_framework(framework)
    frame, target = read_sample(sample_path, target_column)
    foreign = fw.read_foreign(model_path, task=task, n_features=frame.shape[1],
                              trusted_types=trusted_types, architecture=architecture,
                              init_args=args)
    feature_names = _feature_names(foreign.feature_names, frame, fw=fw,
                                   n_features=foreign.n_features, path=model_path,
                                   sample_path=sample_path)
    native = NativeModel(foreign.model, fw.name, foreign.task, foreign.spec,
                         feature_names=feature_names)
    categories = native.category_text_columns()  # text the model maps to codes itself
    text = [c for c in text_columns_of(frame, feature_names) if c not in categories]
    if text:
        if not isinstance(fw, TabularFramework):
            raise InvalidInputError(f"Sample columns {text} hold text; {fw.name} models take "
                                    "numbers. Give a sample of numbers.")
        try:
            fw.check_preprocessing(scaler=False, impute=False, text_columns=text)
        except InvalidInputError as e:
            raise InvalidInputError(
                f"Sample column(s) {text} hold text, but the model {model_path!r} takes "
                "them as numbers (it was not trained with them as pandas 'category' "
                "columns). Give those columns as the numbers the model was trained on."
            ) from e
        if foreign.feature_names is None:
            raise InvalidInputError(
                f"Sample columns {text} hold text, and the model {model_path!r} was not "
                "fitted on a DataFrame (no feature_names_in_): it cannot take text by name.")
    text = [c for c in feature_names if c in text or c in categories]
    native.text_columns = text
    native.source = repr(model_path)
    X = features_from_frame(frame, feature_names, text, where=repr(sample_path))
    class_labels = None
    if foreign.task == "classification":
        n_classes = foreign.n_classes or np.asarray(native.predict_proba(X[:1])).shape[1]
        stated = [s.strip() for s in labels.split(",") if s.strip()] if labels else []
        class_labels = _class_labels(foreign.class_labels, stated=stated, target=target,
                                     n_classes=n_classes, path=model_path)
    elif labels:
        raise InvalidInputError("--labels names classes; the model is a regressor.")
    base = os.path.basename(os.path.normpath(model_path))
    model_meta = ModelMeta(
        framework=fw.name, framework_version=fw.version(), task=foreign.task,
        estimator=foreign.estimator, feature_names=list(feature_names),
        class_labels=class_labels, target_name=target_column or None, text_columns=text,
        origin={"kind": "exported", "source": base, "format": foreign.format})
    onnx_model, meta = export_checked(native, model_meta, X, opset=opset, tolerance=tolerance)
    model_name = check_name(name or name_from_path(model_path), what="model name")
    record = record_from_meta(onnx_model, meta, model_name=model_name, model_version=version)
    os.makedirs(out_dir, exist_ok=True)
    inputs = model_inputs(X[:SAMPLE_ROWS], text)
    save_tensors(os.path.join(out_dir, SAMPLE_FILE),
                 inputs if isinstance(inputs, dict) else {"input": inputs})
    save_metadata(record, onnx_model, os.path.join(out_dir, ONNX_FILENAME))
    return record
