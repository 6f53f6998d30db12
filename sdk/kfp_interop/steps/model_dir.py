"""The model folder contract between stages (a KFP ``Model`` artifact's folder): the
model file(s) and ``model_meta.json``, the exactly typed context every later stage needs
(how it was trained, on what data, its native file and, after export, its parity).
KFP artifact metadata would turn ints into floats, so the facts travel in the folder."""

from __future__ import annotations

import json
import os
from typing import Any

from kfp_interop.constants import MODEL_META_FILENAME
from kfp_interop.errors import InvalidInputError
from kfp_interop.files import atomic_write_json

__all__ = ["model_meta", "read_model_meta", "write_model_meta", "contract_meta",
           "CONTRACT_KEYS"]


def write_model_meta(directory: str, meta: dict[str, Any]) -> None:
    atomic_write_json(os.path.join(directory, MODEL_META_FILENAME), meta)


def read_model_meta(directory: str) -> dict[str, Any]:
    """The context a model folder carries (written by train and export)."""
    path = os.path.join(directory, MODEL_META_FILENAME)
    if not os.path.isfile(path):
        raise InvalidInputError(f"{directory!r} holds no {MODEL_META_FILENAME}: pass a model "
                                "produced by kfp-interop's train or export_onnx step.")
    with open(path) as f:
        return json.load(f)


def model_meta(data_meta: dict[str, Any], *, framework: str, framework_version: str,
               estimator: str, task: str, hyperparameters: dict, seed: int, metrics: dict,
               saved: dict, **extra: Any) -> dict[str, Any]:
    """The context a trained model's folder carries: how it was trained, on what data
    (from the split's metadata), and its native file."""
    return {
        "framework": framework, "framework_version": framework_version,
        "estimator": estimator, "task": task, "hyperparameters": hyperparameters,
        "seed": seed, "metrics": metrics, "feature_names": data_meta["feature_names"],
        "class_labels": data_meta.get("class_labels"), "target_name": data_meta["target_name"],
        "dataset": data_meta["source"], "data_sha256": data_meta["data_sha256"],
        "rows": data_meta["rows"], "train_rows": data_meta["train_rows"],
        "test_rows": data_meta["test_rows"], "native_format": saved["format"],
        "native_file": saved["file"], "native_sha256": saved["sha256"],
        "origin": {"kind": "trained", "source": "kfp-interop"},
        **({"text_columns": data_meta["text_columns"]} if data_meta.get("text_columns") else {}),
        **extra,
    }


#: What a Model artifact from your own component must say about itself (in
#: ``model_meta.json`` in its folder, or as the artifact's metadata); docs/model-artifact.md.
CONTRACT_KEYS = ("framework", "task", "feature_names")


def contract_meta(model_dir: str, artifact_metadata: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
    """The facts of a model folder: ``model_meta.json`` when kfp-interop (or you) wrote
    one, else the Model artifact's metadata (a model from your own component).

    Raises:
        InvalidInputError: neither says the framework, task and feature names (and, for
            classification, the class labels), naming what is missing.
    """
    path = os.path.join(model_dir, MODEL_META_FILENAME) if os.path.isdir(model_dir) else ""
    if path and os.path.isfile(path):
        return read_model_meta(model_dir)
    meta = {k: v for k, v in (artifact_metadata or {}).items()}
    missing = [k for k in CONTRACT_KEYS if not meta.get(k)]
    if meta.get("task") == "classification" and not meta.get("class_labels"):
        missing.append("class_labels")
    if missing:
        raise InvalidInputError(
            f"The model at {model_dir!r} has no {MODEL_META_FILENAME} and its artifact "
            f"metadata lacks {missing}: a model from your own component must say its "
            "framework, task, feature_names (input order) and, for classification, "
            "class_labels (probability column order). See docs/model-artifact.md.")
    if meta["task"] not in ("classification", "regression"):
        raise InvalidInputError(f"task {meta['task']!r} must be classification or "
                                "regression (other models enter as ONNX through adopt).")
    meta["feature_names"] = [str(f) for f in meta["feature_names"]]
    meta.setdefault("origin", {"kind": "exported",
                               "source": meta.get("source", "a model artifact")})
    return meta
