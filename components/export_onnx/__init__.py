"""The export_onnx component (see README.md beside this file)."""

from kfp_interop.components.export_onnx.component import export_onnx

__all__ = ["export_onnx"]
