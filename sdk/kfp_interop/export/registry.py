"""The exporter registry: framework name -> function converting a native model to ONNX."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from kfp_interop.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    import onnx

    from kfp_interop.frameworks import NativeModel

__all__ = ["EXPORTERS", "Exporter", "register_exporter"]

#: ``(native model, n_features, opset) -> onnx.ModelProto``; the output names and the
#: batch dimension are normalised afterwards by :func:`kfp_interop.export.export_onnx`.
Exporter = Callable[["NativeModel", int, int], "onnx.ModelProto"]

EXPORTERS: Registry[Exporter] = Registry(
    "exporter framework",
    "Add one with kfp_interop.export.register_exporter(framework, fn).",
    entry_point_group="kfp_interop.exporters")


def register_exporter(framework: str, fn: Exporter, *, replace: bool = False) -> Exporter:
    """Register ``fn(native_model, n_features, opset) -> onnx.ModelProto`` for a framework."""
    return EXPORTERS.register(framework, fn, replace=replace)
