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

__all__ = ["model_meta", "read_model_meta", "write_model_meta"]


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
        "native_file": saved["file"], "native_sha256": saved["sha256"], **extra,
    }
