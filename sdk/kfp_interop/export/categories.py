"""Category columns inside the graph: a tree ensemble trained on pandas ``category``
columns (LightGBM, XGBoost) splits on the categories' codes, which the framework
computes from the values before its trees see them. The exported graph does the same,
so a client sends the values its table holds (``"red"``, not ``2``):

* with text categories, the graph takes one ``[-1, 1]`` input per column, named like
  it (BYTES for text, FP32 for numbers), as scikit-learn models with text columns do;
* with numeric categories only, it keeps the one ``input`` matrix.

Each category column then goes through an ``ai.onnx.ml`` ``LabelEncoder`` (value ->
code, as FP32), an unknown or missing value becoming NaN, which is what LightGBM and
XGBoost make of a value outside the categories they trained on (a missing value); the
columns are concatenated again in the model's order and fed to the converted trees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kfp_interop.constants import INPUT_NAME
from kfp_interop.onnx_model import release_names, rename_tensor, unique_name

if TYPE_CHECKING:  # pragma: no cover
    import onnx

    from kfp_interop.frameworks import NativeModel

__all__ = ["encode_categories"]

#: LabelEncoder with float keys/values (and keys_strings -> values_floats) is ai.onnx.ml 2
_LABEL_ENCODER_ML_OPSET = 2


def encode_categories(proto: "onnx.ModelProto", native: "NativeModel",
                      n_features: int, opset: int) -> "onnx.ModelProto":
    """Put the value -> code mapping of ``native.categories`` in front of a converted
    graph whose input is ``input`` ``[N, n_features]`` (FP32 codes). In place.
    ``opset`` is the default-domain opset the graph gets when it imports none (a tree
    ensemble alone is all ``ai.onnx.ml``); Gather and Concat exist in every one."""
    import math

    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    names = list(native.feature_names or [f"f{i}" for i in range(n_features)])
    text = set(native.text_columns)
    per_column = bool(text)
    if per_column:  # the converter's tensors may share a column's name
        release_names(proto, names)
    features = unique_name(proto, "kfp_interop_features")
    rename_tensor(proto, INPUT_NAME, features)
    kept = [i for i in graph.input if i.name != features]
    del graph.input[:]
    nodes, columns = [], []
    if per_column:
        for name in names:
            graph.input.append(helper.make_tensor_value_info(
                name, TensorProto.STRING if name in text else TensorProto.FLOAT, ["N", 1]))
            columns.append(name)
    else:
        graph.input.append(helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT,
                                                         ["N", n_features]))
        for i in range(n_features):
            if i not in native.categories:
                columns.append(None)  # filled below: the columns between categories
                continue
            index = unique_name(proto, f"kfp_interop_column{i}_index")
            column = unique_name(proto, f"kfp_interop_column{i}")
            graph.initializer.append(numpy_helper.from_array(np.array([i], np.int64), index))
            nodes.append(helper.make_node("Gather", [INPUT_NAME, index], [column], axis=1,
                                          name=column))
            columns.append(column)
    graph.input.extend(kept)
    parts = []
    for i, values in sorted(native.categories.items()):
        code = unique_name(proto, f"kfp_interop_code{i}")
        as_text = any(isinstance(v, str) for v in values)
        keys = ({"keys_strings": [str(v) for v in values]} if as_text else
                {"keys_floats": [float(v) for v in values]})
        nodes.append(helper.make_node(
            "LabelEncoder", [columns[i]], [code], domain="ai.onnx.ml", name=code,
            values_floats=[float(k) for k in range(len(values))], default_float=math.nan,
            **keys))
        columns[i] = code
    if per_column:
        parts = columns
    else:  # runs of plain columns are sliced from the input as they are
        start = None
        for i in range(n_features + 1):
            plain = i < n_features and columns[i] is None
            if plain and start is None:
                start = i
            if not plain and start is not None:
                # Gather (opset 1), not Slice: the trees' graph may import opset 1 only
                part = unique_name(proto, f"kfp_interop_columns{start}_{i}")
                index = unique_name(proto, f"{part}_index")
                graph.initializer.append(numpy_helper.from_array(
                    np.arange(start, i, dtype=np.int64), index))
                nodes.append(helper.make_node("Gather", [INPUT_NAME, index], [part], axis=1,
                                              name=part))
                parts.append(part)
                start = None
            if i < n_features and not plain:
                parts.append(columns[i])
    nodes.append(helper.make_node("Concat", parts, [features], axis=1,
                                  name="kfp_interop_features"))
    for node in reversed(nodes):  # in front of the trees, in order
        graph.node.insert(0, node)
    for imported in proto.opset_import:
        if imported.domain == "ai.onnx.ml" and imported.version < _LABEL_ENCODER_ML_OPSET:
            imported.version = _LABEL_ENCODER_ML_OPSET
    if not any(o.domain == "ai.onnx.ml" for o in proto.opset_import):
        proto.opset_import.append(helper.make_opsetid("ai.onnx.ml", _LABEL_ENCODER_ML_OPSET))
    if not any(o.domain in ("", "ai.onnx") for o in proto.opset_import):
        proto.opset_import.append(helper.make_opsetid("", opset))
    return proto
