"""Export a native model to ONNX through its framework's exporter, and give the result
the interface every kfp-interop model has:

* one input ``input``: FP32, shape ``[-1, n_features]`` (dynamic batch); for a table
  with text columns, one input per column instead, named like it, ``[-1, 1]``, FP32 for
  numbers and BYTES (strings) for text;
* classification: outputs ``label`` (INT64, ``[-1]``, the class index) and
  ``probabilities`` (FP32, ``[-1, n_classes]``) as plain tensors (no ZipMap);
* regression: one output ``variable`` (FP32, ``[-1, 1]``).

Example:
    >>> onnx_model = export_onnx(native_model, n_features=4, opset=17)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kfp_interop._version import __version__
from kfp_interop.constants import (CLASSIFIER_OUTPUTS, DEFAULT_OPSET, INPUT_NAME,
                                   LABEL_OUTPUT, PROBABILITIES_OUTPUT, REGRESSOR_OUTPUTS,
                                   VALUE_OUTPUT)
from kfp_interop.errors import ExportError, InvalidInputError
from kfp_interop.export.registry import EXPORTERS
from kfp_interop.onnx_model import (release_names, rename_tensor, tensor_specs, unique_opsets,
                                    unique_name)

if TYPE_CHECKING:  # pragma: no cover
    import onnx

    from kfp_interop.frameworks import NativeModel

__all__ = ["export_onnx", "set_batch_dimension", "one_in_one_out", "INTERFACE_NAMES",
           "OUTPUT_NAMES"]

#: the outputs of the interface, and with the input every name the interface uses
OUTPUT_NAMES = (LABEL_OUTPUT, PROBABILITIES_OUTPUT, VALUE_OUTPUT)
INTERFACE_NAMES = (INPUT_NAME, *OUTPUT_NAMES)


def set_batch_dimension(value_info) -> None:
    """Make the first dimension of a graph input or output the dynamic batch ``N``."""
    dims = value_info.type.tensor_type.shape.dim
    if len(dims):
        dims[0].Clear()
        dims[0].dim_param = "N"


def one_in_one_out(proto: "onnx.ModelProto", task: str, *, converter: str,
                   output: str = "probabilities") -> "onnx.ModelProto":
    """The common interface for a graph of one input and one output (what Keras and
    tf2onnx give): ``input`` with a dynamic batch, then ``variable`` (regression), or
    ``probabilities`` and ``label`` = ArgMax. In place; returns ``proto``.

    Args:
        output: what a classifier's output holds (:data:`~kfp_interop.frameworks.base.
            OUTPUT_KINDS`): ``probabilities``; ``logits`` (a Softmax is added);
            ``sigmoid``, one column P(class 1) of a binary classifier (the graph returns
            ``[1 - p, p]``).

    Raises:
        ExportError: the graph has other than one input and one output.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise ExportError(f"{converter} gave inputs {[i.name for i in graph.input]} and "
                          f"outputs {[o.name for o in graph.output]}; expected one of each.")
    # the graph may name its own tensors like ours (an output called probabilities)
    release_names(proto, INTERFACE_NAMES)
    rename_tensor(proto, graph.input[0].name, INPUT_NAME)
    set_batch_dimension(graph.input[0])
    source = graph.output[0]
    dims = [d.dim_value or -1 for d in source.type.tensor_type.shape.dim]
    if len(dims) == 1:  # one value per row: the interface has a column
        column = unique_name(proto, "kfp_interop_column")
        shape = unique_name(proto, "kfp_interop_column_shape")
        graph.initializer.append(numpy_helper.from_array(np.array([-1, 1], np.int64), shape))
        graph.node.append(helper.make_node("Reshape", [source.name, shape], [column],
                                           name="kfp_interop_column"))
        del graph.output[:]
        graph.output.append(helper.make_tensor_value_info(column, TensorProto.FLOAT,
                                                          ["N", 1]))
        source, dims = graph.output[0], [-1, 1]
    if task == "regression":
        rename_tensor(proto, source.name, VALUE_OUTPUT)
        return proto
    if output == "probabilities":
        rename_tensor(proto, source.name, PROBABILITIES_OUTPUT)
    else:  # the interface returns probabilities: compute them after the graph's output
        if output == "logits":
            width = dims[-1] if dims else -1
            graph.node.append(helper.make_node("Softmax", [source.name],
                                               [PROBABILITIES_OUTPUT], axis=-1,
                                               name="kfp_interop_softmax"))
        elif output == "sigmoid":
            width = 2
            one = unique_name(proto, "kfp_interop_one")
            other = unique_name(proto, "kfp_interop_class0")
            graph.initializer.append(numpy_helper.from_array(np.ones((1,), np.float32), one))
            graph.node.append(helper.make_node("Sub", [one, source.name], [other],
                                               name="kfp_interop_class0"))
            graph.node.append(helper.make_node("Concat", [other, source.name],
                                               [PROBABILITIES_OUTPUT], axis=1,
                                               name="kfp_interop_binary"))
        else:
            raise ExportError(f"Unknown output kind {output!r} from {converter}.")
        del graph.output[:]
        graph.output.append(helper.make_tensor_value_info(
            PROBABILITIES_OUTPUT, TensorProto.FLOAT, ["N", width]))
    graph.node.append(helper.make_node("ArgMax", [PROBABILITIES_OUTPUT], [LABEL_OUTPUT],
                                       axis=1, keepdims=0, name="kfp_interop_label"))
    graph.output.insert(0, helper.make_tensor_value_info(LABEL_OUTPUT, TensorProto.INT64,
                                                         ["N"]))
    return proto


def _normalise(model: "onnx.ModelProto", task: str) -> "onnx.ModelProto":
    """Give every exported model the same output names (see the module docstring)."""
    wanted = CLASSIFIER_OUTPUTS if task == "classification" else REGRESSOR_OUTPUTS
    if len(model.graph.output) != len(wanted):
        raise ExportError(f"Converter produced outputs {[o.name for o in model.graph.output]}"
                          f"; expected {len(wanted)} output(s) for {task}.")
    clash = [i.name for i in model.graph.input if i.name in OUTPUT_NAMES]
    if clash:
        raise ExportError(f"Input column(s) {clash} are named like the model's outputs "
                          f"{list(OUTPUT_NAMES)}; rename the column(s) in the data and "
                          "train again.")
    release_names(model, OUTPUT_NAMES)  # a converter's own tensors may use our names
    outputs = [o.name for o in model.graph.output]
    if task == "classification" and _elem_type(model, outputs[0]) != _INT64:
        # a classifier trained on text labels returns them as strings: the interface
        # returns the class index (class_labels names it), the argmax of probabilities
        rename_tensor(model, outputs[1], PROBABILITIES_OUTPUT)
        _label_from_probabilities(model)
        return _batch_dims(model)
    for old, new in zip(outputs, wanted):
        rename_tensor(model, old, new)
    return _batch_dims(model)


def _batch_dims(model: "onnx.ModelProto") -> "onnx.ModelProto":
    # Every output's first dimension is the batch (some converters declare a fixed 1).
    for vi in model.graph.output:
        set_batch_dimension(vi)
    return model


_INT64 = 7  # onnx.TensorProto.INT64


def _elem_type(model: "onnx.ModelProto", name: str) -> int:
    return next(o.type.tensor_type.elem_type for o in model.graph.output if o.name == name)


def _label_from_probabilities(model: "onnx.ModelProto") -> None:
    """Replace the graph's label output by ``ArgMax(probabilities)`` (INT64)."""
    from onnx import TensorProto, helper

    graph = model.graph
    kept = [o for o in graph.output if o.name == PROBABILITIES_OUTPUT]
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(LABEL_OUTPUT, TensorProto.INT64, ["N"]))
    graph.output.extend(kept)
    graph.node.append(helper.make_node("ArgMax", [PROBABILITIES_OUTPUT], [LABEL_OUTPUT],
                                       axis=1, keepdims=0, name="kfp_interop_label"))


def export_onnx(native: "NativeModel", *, n_features: int,
                opset: int = DEFAULT_OPSET) -> "onnx.ModelProto":
    """Convert a fitted model to ONNX and check it.

    Args:
        native: the fitted model (see :class:`kfp_interop.frameworks.NativeModel`).
        n_features: number of input features.
        opset: the highest default-domain ONNX opset the model may use (a ceiling, as
            converters treat ``target_opset``; ``ai.onnx.ml`` uses up to 3). The opsets
            the model actually imports are in :func:`kfp_interop.onnx_model.model_opsets`.

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
    model = exporter(native, n_features, opset)
    if native.categories:  # values -> the codes the trees split on, inside the graph
        from kfp_interop.export.categories import encode_categories

        encode_categories(model, native, n_features, opset)
    model = _normalise(model, native.task)
    # Converters name the graph with a random UUID, and some list opset imports in set
    # order (which follows Python's per-process string hashing): a fixed name and a
    # sorted list keep exports of the same model byte-identical across processes.
    model.graph.name = f"{native.framework}_{native.task}"
    # one import per domain: skl2onnx can list the default domain twice
    unique_opsets(model)
    model.producer_name = "kfp-interop"
    model.producer_version = __version__
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ExportError(f"The exported {native.framework} model fails onnx.checker: {e}") from e
    inputs, _ = tensor_specs(model)
    if native.text_columns:  # one input per column, strings for text
        wanted = [{"name": c, "datatype": "BYTES" if c in native.text_columns else "FP32",
                   "shape": [-1, 1]} for c in native.feature_names]
        if inputs != wanted:
            raise ExportError(f"Exported inputs {inputs} are not one [-1, 1] input per "
                              f"column {wanted}.")
    elif [(i["name"], i["shape"]) for i in inputs] != [(INPUT_NAME, [-1, n_features])]:
        raise ExportError(f"Exported inputs {inputs} are not one {INPUT_NAME!r} of shape "
                          f"[-1, {n_features}]: the batch dimension must be dynamic.")
    return model
