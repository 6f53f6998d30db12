"""scikit-learn -> ONNX through skl2onnx (plain tensor outputs, no ZipMap)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kfp_interop.constants import INPUT_NAME, ML_OPSET
from kfp_interop.errors import ExportError, UnsupportedModelError
from kfp_interop.export.failures import explain
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


def columns_by_position(model):
    """A copy of ``model`` whose ColumnTransformers select columns by position instead
    of by name (the model unchanged when none does).

    A pipeline fitted on a DataFrame may pick its columns by name
    (``ColumnTransformer([("scale", StandardScaler(), ["age", "fee"])])``); skl2onnx
    then looks for graph inputs with those names, while a table of numbers enters as one
    ``input`` matrix. Each name becomes its position among the columns the transformer
    was fitted on, which is the order of the matrix.
    """
    import copy

    from sklearn.compose import ColumnTransformer

    found = [m for m in _estimators_in(model) if isinstance(m, ColumnTransformer)
             and any(_by_name(cols) for _, _, cols in getattr(m, "transformers_", []))]
    if not found:
        return model
    model = copy.deepcopy(model)
    for ct in _estimators_in(model):
        if not isinstance(ct, ColumnTransformer) or not hasattr(ct, "transformers_"):
            continue
        names = [str(n) for n in getattr(ct, "feature_names_in_", [])]
        positions = []
        for name, transformer, cols in ct.transformers_:
            if _by_name(cols):
                unknown = [c for c in ([cols] if isinstance(cols, str) else cols)
                           if c not in names]
                if unknown:
                    raise ExportError(f"ColumnTransformer step {name!r} selects columns "
                                      f"{unknown} it was not fitted on ({names}).")
                cols = (names.index(cols) if isinstance(cols, str)
                        else [names.index(c) for c in cols])
            positions.append((name, transformer, cols))
        ct.transformers_ = positions
    return model


def _by_name(cols) -> bool:
    return isinstance(cols, str) or (isinstance(cols, (list, tuple)) and bool(cols)
                                     and all(isinstance(c, str) for c in cols))


def _estimators_in(model):
    """The model and every estimator inside it (pipeline steps, column transformers'
    transformers), outermost first."""
    yield model
    for _, step in getattr(model, "steps", []):
        yield from _estimators_in(step)
    for _, transformer, _ in getattr(model, "transformers_", []):
        if not isinstance(transformer, str):
            yield from _estimators_in(transformer)


def export_sklearn(native: "NativeModel", n_features: int, opset: int):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.exceptions import MissingConverter, MissingShapeCalculator

    model = native.model if native.text_columns else columns_by_position(native.model)
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
        name = _missing_type(e) or type(final).__name__
        raise UnsupportedModelError(
            f"skl2onnx cannot convert {native.source}: it has no converter for {name}. "
            f"To export it, use estimators it converts ({', '.join(supported_estimators())}),"
            " or register a converter with skl2onnx.update_registered_converter."
        ) from e
    except Exception as e:  # noqa: BLE001 - converters raise many types; explained below
        raise explain("skl2onnx", e, source=native.source) from e
    if native.text_columns:
        _restore_column_names(proto, native.feature_names)
    return proto


def _missing_type(e: BaseException) -> str:
    """The estimator type a skl2onnx MissingConverter/MissingShapeCalculator names."""
    import re

    found = re.search(r"type '?<?class '([^']+)'", str(e)) or re.search(
        r"for type '?([A-Za-z_][\w.]*)", str(e))
    return found.group(1).rsplit(".", 1)[-1] if found else ""


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
