"""PyTorch -> ONNX with ``torch.onnx.export`` (the dynamo exporter) and a dynamic batch:
the module's logits become ``label`` (argmax) and ``probabilities`` (softmax)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kfp_interop.constants import CLASSIFIER_OUTPUTS, INPUT_NAME
from kfp_interop.errors import ExportError, UnsupportedModelError
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
    except Exception as e:  # torch raises many types; name the operator when it is one
        if "Guard failed" in _chain_text(e) or "always_classified" in _chain_text(e):
            raise ExportError(
                "The model takes a fixed batch size, so it cannot be exported with a "
                "dynamic batch: export the program with dynamic_shapes={'x': {0: "
                "torch.export.Dim('batch')}} (or save the state dict).") from e
        ops = _operators_in(e)
        what = (f"operator(s) {', '.join(ops)} have no ONNX translation" if ops else
                _first_line(e))
        raise ExportError(f"torch.onnx.export could not export {type(native.model).__name__} "
                          f"at opset {opset}: {what}. Try another opset, or replace the "
                          "layer that uses it.") from e
    return program.model_proto


def _first_line(e: BaseException) -> str:
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    return text.splitlines()[0] if text else type(e).__name__


def _chain_text(e: BaseException) -> str:
    """The text of an exception and its causes."""
    parts, seen = [], set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        parts.append(str(e))
        e = e.__cause__ or e.__context__
    return "\n".join(parts)


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
