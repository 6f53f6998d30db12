"""Optimize an exported model behind the accuracy gate (:mod:`kfp_interop.export.optimize`)
and write it as a model folder: ``model.onnx`` with its new record, its sidecar and the
sample it was checked on."""

from __future__ import annotations

import os

from kfp_interop.constants import ONNX_FILENAME
from kfp_interop.steps.stage import stage

__all__ = ["optimize_step"]


@stage("out_dir")
def optimize_step(*, model_path: str, sample_path: str = "", graph_level: str = "basic",
                  quantize: str = "none", max_accuracy_drop: float = 0.01, out_dir: str):
    """Optimize ``model_path`` (an ONNX file with its record, or its folder) and write
    ``out_dir/model.onnx``. The sample defaults to the ``sample.npz`` beside the model
    (what export and adopt write). Nothing is written when the gate refuses.

    Returns:
        ``(record, report)``.
    """
    from kfp_interop.errors import InvalidInputError
    from kfp_interop.export.adopt import SAMPLE_FILE, save_tensors
    from kfp_interop.export.optimize import optimize_onnx
    from kfp_interop.metadata import save_metadata
    from kfp_interop.onnx_model import find_onnx

    path = find_onnx(model_path)
    sample = sample_path or os.path.join(os.path.dirname(path), SAMPLE_FILE)
    if not os.path.isfile(sample):
        raise InvalidInputError(f"No sample to check the optimized model on: {sample!r} "
                                "does not exist; pass --sample inputs.npz (arrays by input "
                                "name, optionally 'labels').")
    result = optimize_onnx(path, sample, graph_level=graph_level, quantize=quantize,
                           max_accuracy_drop=max_accuracy_drop)
    os.makedirs(out_dir, exist_ok=True)
    save_tensors(os.path.join(out_dir, SAMPLE_FILE), result.sample)
    save_metadata(result.record, result.model, os.path.join(out_dir, ONNX_FILENAME))
    return result.record, result.report
