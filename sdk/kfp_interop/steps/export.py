"""The export stages: native model -> ONNX behind the parity gate, then the
inference-metadata record built and embedded. A stage writes its outputs only after
every check passed (atomically), so a failed stage leaves no output that looks complete."""

from __future__ import annotations

import os
from typing import Any

from kfp_interop.constants import DEFAULT_OPSET, DEFAULT_TOLERANCE, ONNX_FILENAME
from kfp_interop.errors import InvalidInputError, ModelFileError
from kfp_interop.steps.model_dir import ModelMeta, read_model_meta, write_model_meta
from kfp_interop.steps.stage import stage

__all__ = ["export_onnx_step", "attach_metadata_step", "export_checked", "record_from_meta"]


@stage("out_dir")
def export_onnx_step(*, model_dir: str, test_path: str, opset: int = DEFAULT_OPSET,
                tolerance: float = DEFAULT_TOLERANCE, native_sha256: str = "",
                trusted_types: str = "", artifact_metadata: dict | None = None,
                out_dir: str) -> ModelMeta:
    """Export to ONNX, run the parity gate, and only then write ``out_dir/model.onnx``.

    The model is a folder written by kfp-interop's training (``model_meta.json`` beside
    the native file), or by your own component: the native file (or a folder holding
    it) with ``artifact_metadata`` saying framework, task, feature names and class
    labels (``docs/model-artifact.md``). ``test_path`` is a split from ``load_data``, or
    any CSV/Parquet file with the model's feature columns.

    Args:
        native_sha256: the native file's sha256 as the training step returned it (in a
            pipeline: its output parameter, which travels beside the artifact, so
            whoever can rewrite the artifact cannot also rewrite the hash). When empty,
            only the hash inside the model folder is checked.
        trusted_types: exact type names to trust in the native file beyond the
            framework's own list (comma-separated; see docs/security.md).

    Returns:
        The model folder's :class:`ModelMeta` plus the export's (``opsets``, ``parity``,
        ``format: "onnx"``).

    Raises:
        ModelFileError: the native file is not the one trained (sha256), or holds
            untrusted types.
        ParityError: the gate failed (nothing is written).
    """
    from kfp_interop.data import read_features
    from kfp_interop.frameworks import get_framework, load_native
    from kfp_interop.onnx_model import save_onnx

    model_meta = read_model_meta(model_dir, artifact_metadata or {})
    model_meta.check_exportable(repr(model_dir))
    inside = model_meta.native_sha256
    if native_sha256 and inside and native_sha256 != inside:
        raise ModelFileError(f"The model folder {model_dir!r} says its file has sha256 "
                             f"{inside}, the training step returned {native_sha256}: the "
                             "artifact was changed after training. Train again.")
    native = load_native(model_dir, framework=model_meta.framework,
                         task=model_meta.task, expected_sha256=native_sha256 or inside,
                         trusted_types=trusted_types)
    native.feature_names = model_meta.feature_names
    native.source = repr(model_dir)
    # columns the model maps from text categories itself take text whether stated or not
    text = set(model_meta.text_columns) | set(native.category_text_columns())
    native.text_columns = [c for c in native.feature_names if c in text]
    fw = get_framework(native.framework)
    model_meta = model_meta.replace(
        text_columns=native.text_columns,
        framework_version=model_meta.framework_version or fw.version(),
        estimator=model_meta.estimator or fw.estimator_of(native.model))
    X = read_features(test_path, native.feature_names, native.text_columns)
    onnx_model, meta = export_checked(native, model_meta, X, opset=opset, tolerance=tolerance)
    os.makedirs(out_dir, exist_ok=True)
    save_onnx(onnx_model, os.path.join(out_dir, ONNX_FILENAME))
    write_model_meta(out_dir, meta)
    return meta


def export_checked(native, model_meta: ModelMeta, X, *, opset: int,
                   tolerance: float) -> tuple[Any, ModelMeta]:
    """Export ``native`` and run the parity gate on rows ``X``; nothing is written.

    Returns:
        The ONNX model, and ``model_meta`` with the export's ``format``, ``file``,
        ``opsets`` and ``parity``.

    Raises:
        ParityError: the gate failed.
    """
    from kfp_interop.export import check_parity, enforce_parity, export_onnx
    from kfp_interop.onnx_model import model_opsets

    onnx_model = export_onnx(native, n_features=len(model_meta.feature_names), opset=opset)
    parity = enforce_parity(check_parity(native, onnx_model, X, tolerance=tolerance))
    return onnx_model, model_meta.exported(opset=opset, opsets=model_opsets(onnx_model),
                                           parity=parity.to_dict())


@stage("out_dir")
def attach_metadata_step(*, model_dir: str, model_name: str = "", model_version: str = "1",
                         out_dir: str):
    """Build the record, embed it, and write ``out_dir/model.onnx`` plus its JSON sidecar
    ``out_dir/model.metadata.json``. An empty ``model_name`` derives one from the data set
    and framework.

    Returns:
        The :class:`~kfp_interop.metadata.InferenceMetadata` record.
    """
    from kfp_interop.metadata import save_metadata
    from kfp_interop.onnx_model import read_onnx

    model_meta = read_model_meta(model_dir)
    if not model_meta.parity_passed:
        raise InvalidInputError("The model's parity gate did not pass (or did not run): "
                                "attach metadata only to a model that export_onnx approved.")
    model = read_onnx(os.path.join(model_dir, ONNX_FILENAME))
    record = record_from_meta(model, model_meta, model_name=model_name,
                              model_version=model_version)
    os.makedirs(out_dir, exist_ok=True)
    save_metadata(record, model, os.path.join(out_dir, ONNX_FILENAME))
    return record


def record_from_meta(model, model_meta: ModelMeta, *, model_name: str = "",
                     model_version: str = "1"):
    """The record of an exported model from the facts its folder carries (an empty
    ``model_name`` derives one from the data set and framework)."""
    from kfp_interop.metadata import build_record
    from kfp_interop.naming import default_model_name

    model_name = model_name or default_model_name(model_meta.dataset or "model",
                                                  model_meta.framework)
    parity = {k: v for k, v in (model_meta.parity or {}).items() if k != "task"}
    record = build_record(
        model, name=model_name, version=model_version, task=model_meta.task,
        framework={"name": model_meta.framework,
                   "version": model_meta.framework_version or "unknown",
                   "estimator": model_meta.estimator or "unknown"},
        feature_names=model_meta.feature_names, class_labels=model_meta.class_labels,
        target=model_meta.target_name, training=model_meta.training(), parity=parity,
        lineage=model_meta.lineage, origin=model_meta.origin,
        federated=model_meta.federated)
    if model_meta.optimization:
        record = record.replace(optimization=model_meta.optimization)
    return record
