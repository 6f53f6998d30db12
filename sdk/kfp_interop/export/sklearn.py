"""scikit-learn -> ONNX through skl2onnx (plain tensor outputs, no ZipMap)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kfp_interop.constants import INPUT_NAME, ML_OPSET
from kfp_interop.errors import ExportError, UnsupportedModelError
from kfp_interop.export.registry import register_exporter
from kfp_interop.frameworks.base import TabularFramework
from kfp_interop.onnx_model import rename_tensor

if TYPE_CHECKING:  # pragma: no cover
    from kfp_interop.frameworks import NativeModel

__all__ = ["export_sklearn", "supported_estimators"]


def supported_estimators() -> list[str]:
    from skl2onnx import supported_converters

    return sorted(supported_converters(from_sklearn=True))


def _input_types(native: "NativeModel", n_features: int) -> list:
    """One FP32 matrix, or one ``[None, 1]`` input per column (strings for text)."""
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    if not native.text_columns:
        return [(INPUT_NAME, FloatTensorType([None, n_features]))]
    return [(c, StringTensorType([None, 1]) if c in native.text_columns
             else FloatTensorType([None, 1])) for c in native.feature_names]


def export_sklearn(native: "NativeModel", n_features: int, opset: int):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.exceptions import MissingConverter, MissingShapeCalculator

    model = native.model
    final = TabularFramework.final_estimator(model)
    options = {id(final): {"zipmap": False}} if native.task == "classification" else None
    try:
        proto = convert_sklearn(
            model,
            initial_types=_input_types(native, n_features),
            target_opset={"": opset, "ai.onnx.ml": ML_OPSET},
            options=options,
        )
    except (MissingConverter, MissingShapeCalculator) as e:
        name = type(final).__name__
        raise UnsupportedModelError(
            f"Estimator {name} cannot be converted to ONNX by skl2onnx. Supported "
            f"scikit-learn estimators: {', '.join(supported_estimators())}. Pick one of "
            "them, or register a converter with skl2onnx.update_registered_converter."
        ) from e
    except (RuntimeError, ValueError, TypeError, NotImplementedError) as e:
        raise ExportError(f"skl2onnx failed to convert {type(final).__name__}: {e}") from e
    if native.text_columns:
        _restore_column_names(proto, native.feature_names)
    return proto


def _restore_column_names(proto, columns: list[str]) -> None:
    """skl2onnx turns a column name into an identifier (``sepal length (cm)`` ->
    ``sepal_length__cm_``); the graph's inputs take the columns' own names again, so a
    request names its inputs as the table names its columns."""
    used = {t for node in proto.graph.node for t in list(node.input) + list(node.output)}
    used |= {i.name for i in proto.graph.initializer}
    for graph_input, column in zip(list(proto.graph.input), columns):
        if graph_input.name == column:
            continue
        if column in used:
            raise ExportError(f"Column {column!r} names a tensor inside the converted graph; "
                              "rename the column.")
        rename_tensor(proto, graph_input.name, column)


register_exporter("sklearn", export_sklearn)
