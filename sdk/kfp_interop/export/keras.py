"""Keras 3 -> ONNX with ``model.export(format="onnx")`` (on the TensorFlow backend Keras
converts through tf2onnx), then an ArgMax for ``label`` (classifiers) or the one output
named ``variable`` (regression)."""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING

from kfp_interop.export.core import one_in_one_out
from kfp_interop.export.failures import explain
from kfp_interop.export.registry import register_exporter

if TYPE_CHECKING:  # pragma: no cover
    from kfp_interop.frameworks import NativeModel

__all__ = ["export_keras"]


def export_keras(native: "NativeModel", n_features: int, opset: int):
    """Keras 3 ``model.export(format="onnx")``, then an ArgMax for ``label``."""
    import numpy as np
    import onnx

    model = native.model
    model(np.zeros((1, n_features), dtype=np.float32))  # a loaded model must be built first
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        try:
            model.export(path, format="onnx", verbose=False, opset_version=opset)
        except TypeError:  # older Keras: no opset_version argument
            model.export(path, format="onnx", verbose=False)
        except Exception as e:  # noqa: BLE001 - Keras converts with its backend's exporter
            converter = ("tf2onnx" if os.environ.get("KERAS_BACKEND") == "tensorflow"
                         else "torch.onnx")
            raise explain(converter, e, source=native.source) from e
        proto = onnx.load(path)
    from kfp_interop.frameworks.keras import keras_output_kind

    return one_in_one_out(proto, native.task, converter="Keras export",
                          output=keras_output_kind(model))


register_exporter("keras", export_keras)
