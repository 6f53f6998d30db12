"""The exporter registry: framework name -> function that converts a model to ONNX.

Every exported model has the same interface, whatever the framework:

* one input ``input``: FP32, shape ``[-1, n_features]`` (dynamic batch);
* classification: outputs ``label`` (INT64, ``[-1]``, the class index) and
  ``probabilities`` (FP32, ``[-1, n_classes]``) as plain tensors (no ZipMap);
* regression: one output ``variable`` (FP32, ``[-1, 1]``).

Add a framework with :func:`register_exporter`; an unknown framework fails with the
list of registered ones.

Example:
    >>> onnx_model = export_onnx(native_model, n_features=4, opset=17)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from kfp_interop.errors import ExportError, InvalidInputError
from kfp_interop.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    import onnx

    from kfp_interop.native import NativeModel

__all__ = [
    "DEFAULT_OPSET",
    "INPUT_NAME",
    "EXPORTERS",
    "Exporter",
    "register_exporter",
    "export_onnx",
    "save_onnx",
    "tensor_specs",
    "model_opsets",
]

DEFAULT_OPSET = 17  # supported by the ONNX Runtime in KServe's and Seldon's Triton images
INPUT_NAME = "input"
CLASSIFIER_OUTPUTS = ("label", "probabilities")
REGRESSOR_OUTPUTS = ("variable",)

# (native model, n_features, opset) -> onnx.ModelProto
Exporter = Callable[["NativeModel", int, int], "onnx.ModelProto"]

EXPORTERS: Registry[Exporter] = Registry(
    "exporter framework",
    "Add one with kfp_interop.export.register_exporter(framework, fn).")


def register_exporter(framework: str, fn: Exporter, *, replace: bool = False) -> Exporter:
    """Register ``fn(native_model, n_features, opset) -> onnx.ModelProto`` for a framework."""
    return EXPORTERS.register(framework, fn, replace=replace)


def _rename_tensor(model: "onnx.ModelProto", old: str, new: str) -> None:
    if old == new:
        return
    graph = model.graph
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]
    for vi in list(graph.output) + list(graph.input) + list(graph.value_info):
        if vi.name == old:
            vi.name = new


def _normalise(model: "onnx.ModelProto", task: str) -> "onnx.ModelProto":
    """Give every exported model the same output names (see the module docstring)."""
    outputs = [o.name for o in model.graph.output]
    wanted = CLASSIFIER_OUTPUTS if task == "classification" else REGRESSOR_OUTPUTS
    if len(outputs) != len(wanted):
        raise ExportError(f"Converter produced outputs {outputs}; expected {len(wanted)} "
                          f"output(s) for {task}.")
    for old, new in zip(outputs, wanted):
        _rename_tensor(model, old, new)
    # Every output's first dimension is the batch (some converters declare a fixed 1).
    for vi in model.graph.output:
        dims = vi.type.tensor_type.shape.dim
        if len(dims):
            dims[0].Clear()
            dims[0].dim_param = "N"
    return model


def tensor_specs(model: "onnx.ModelProto") -> tuple[list[dict], list[dict]]:
    """The graph's inputs and outputs as ``{"name", "datatype", "shape"}`` (OIP terms).

    Dynamic dimensions are -1.
    """
    from kfp_interop.metadata.dtypes import onnx_elem_to_oip

    def spec(vi) -> dict:
        t = vi.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
        return {"name": vi.name, "datatype": onnx_elem_to_oip(t.elem_type), "shape": shape}

    inits = {i.name for i in model.graph.initializer}
    return ([spec(v) for v in model.graph.input if v.name not in inits],
            [spec(v) for v in model.graph.output])


def model_opsets(model: "onnx.ModelProto") -> dict[str, int]:
    """The model's opset imports, e.g. ``{"ai.onnx": 17, "ai.onnx.ml": 3}``."""
    return {(o.domain or "ai.onnx"): int(o.version) for o in model.opset_import}


def export_onnx(native: "NativeModel", *, n_features: int,
                opset: int = DEFAULT_OPSET) -> "onnx.ModelProto":
    """Convert a fitted model to ONNX and check it.

    Args:
        native: the fitted model (see :class:`kfp_interop.native.NativeModel`).
        n_features: number of input features.
        opset: the highest default-domain ONNX opset the model may use (a ceiling, as
            converters treat ``target_opset``; ``ai.onnx.ml`` uses up to 3). The opsets
            the model actually imports are in :func:`model_opsets`.

    Returns:
        The checked ``onnx.ModelProto`` with a dynamic batch dimension.

    Raises:
        UnknownNameError: no exporter for ``native.framework``.
        UnsupportedModelError: the converter cannot handle this estimator.
        ExportError: the converted model fails ``onnx.checker`` or has a fixed batch size.
    """
    import onnx

    if not isinstance(opset, int) or not 9 <= opset <= onnx.defs.onnx_opset_version():
        raise InvalidInputError(f"opset={opset!r} is out of range: use an integer from 9 to "
                                f"{onnx.defs.onnx_opset_version()} (default {DEFAULT_OPSET}).")
    if n_features < 1:
        raise InvalidInputError(f"n_features={n_features} must be at least 1.")
    exporter = EXPORTERS.get(native.framework)
    model = _normalise(exporter(native, n_features, opset), native.task)
    # Converters name the graph with a random UUID; a fixed name keeps exports of the
    # same model byte-identical (and so their sha256 reproducible).
    model.graph.name = f"{native.framework}_{native.task}"
    model.producer_name = "kfp-interop"
    from kfp_interop import __version__

    model.producer_version = __version__
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ExportError(f"The exported {native.framework} model fails onnx.checker: {e}") from e
    inputs, _ = tensor_specs(model)
    if [i["shape"] for i in inputs] != [[-1, n_features]]:
        raise ExportError(f"Exported input shape {inputs} is not [-1, {n_features}]: the batch "
                          "dimension must be dynamic.")
    return model


def save_onnx(model: "onnx.ModelProto", path: str) -> str:
    """Write atomically (a temporary file renamed into place); return the path."""
    import os

    tmp = path + ".partial"
    with open(tmp, "wb") as f:
        f.write(model.SerializeToString())
    os.replace(tmp, path)
    return path


def _register_builtin() -> None:
    from kfp_interop.export import boosters, deep, sklearn as _sk

    register_exporter("sklearn", _sk.export_sklearn)
    register_exporter("xgboost", boosters.export_xgboost)
    register_exporter("lightgbm", boosters.export_lightgbm)
    register_exporter("torch", deep.export_torch)
    register_exporter("keras", deep.export_keras)


_register_builtin()
