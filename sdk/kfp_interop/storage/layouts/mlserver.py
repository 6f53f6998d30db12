"""The MLServer layout (Seldon's MLFLOW_SERVER): an MLflow model (``MLmodel`` with the
signature rendered from the record, ``model.onnx``) and MLServer's
``model-settings.json``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from kfp_interop.files import atomic_write_json
from kfp_interop.storage.layouts.base import register_layout

if TYPE_CHECKING:  # pragma: no cover
    from kfp_interop.metadata import InferenceMetadata

__all__ = ["mlserver_files"]


def mlserver_files(record: "InferenceMetadata", onnx_path: str, workdir: str, name: str,
                   version: str) -> dict[str, str]:
    import mlflow.onnx
    import onnx
    from mlflow.models.signature import ModelSignature

    from kfp_interop.metadata.render import to_mlflow_signature

    mlflow_dir = os.path.join(workdir, "mlflow")
    mlflow.onnx.save_model(onnx.load(onnx_path), mlflow_dir,
                           signature=ModelSignature.from_dict(to_mlflow_signature(record)))
    settings = atomic_write_json(
        os.path.join(workdir, "model-settings.json"),
        {"name": name, "implementation": "mlserver_mlflow.MLflowRuntime",
         "parameters": {"uri": "./", "version": version}}, sort_keys=False)
    files = {"model-settings.json": settings}
    for root, _, names in os.walk(mlflow_dir):
        for fname in names:
            full = os.path.join(root, fname)
            files[os.path.relpath(full, mlflow_dir)] = full
    return files


register_layout("mlserver", mlserver_files)
