"""PyTorch -> ONNX with ``torch.onnx.export`` (the dynamo exporter) and a dynamic batch:
the module's logits become ``label`` (argmax) and ``probabilities`` (softmax)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kfp_interop.constants import CLASSIFIER_OUTPUTS, INPUT_NAME
from kfp_interop.errors import UnsupportedModelError
from kfp_interop.export.failures import explain, known_failure
from kfp_interop.export.registry import register_exporter

if TYPE_CHECKING:  # pragma: no cover
    from kfp_interop.frameworks import NativeModel

__all__ = ["export_torch"]


def export_torch(native: "NativeModel", n_features: int, opset: int):
    """``torch.onnx.export`` (the dynamo exporter) with a dynamic batch dimension."""
    import torch

    if native.task != "classification":
        raise UnsupportedModelError("The torch exporter handles classifiers (softmax "
                                    "probabilities); regression networks are not supported yet.")

    class WithLabel(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            probabilities = torch.softmax(self.model(x), dim=1)
            return torch.argmax(probabilities, dim=1), probabilities

    if not isinstance(native.model, torch.fx.GraphModule):
        native.model.eval()  # a torch.export program has no train/eval modes
    wrapped = WithLabel(native.model)
    wrapped.training = False
    example = torch.zeros(2, n_features, dtype=torch.float32)
    try:
        program = torch.onnx.export(
            wrapped, (example,), None, input_names=[INPUT_NAME],
            output_names=list(CLASSIFIER_OUTPUTS), opset_version=opset, dynamo=True,
            dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False)
    except Exception as e:  # noqa: BLE001 - torch raises many types; explained below
        ops = [] if known_failure("torch.onnx", e) else _operators_in(e)
        if ops:
            raise UnsupportedModelError(
                f"torch.onnx cannot convert {native.source}: operator(s) {', '.join(ops)} "
                f"have no ONNX translation at opset {opset}. To export it, try another "
                "opset, or replace the layer that uses them.") from e
        raise explain("torch.onnx", e, source=native.source) from e
    return program.model_proto


def _operators_in(e: BaseException) -> list[str]:
    """Operators named anywhere in an exception chain (e.g. prims.bessel_j0)."""
    import re

    found: list[str] = []
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        text = str(e)
        ops = re.findall(r"op='([A-Za-z0-9_.]+)'", text) or re.findall(
            r"torch\.ops\.([A-Za-z0-9_]+\.[A-Za-z0-9_]+)", text)
        for op in ops:
            if op not in found:
                found.append(op)
        e = e.__cause__ or e.__context__
    return found


register_exporter("torch", export_torch)
