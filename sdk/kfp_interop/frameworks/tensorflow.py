"""TensorFlow: models trained elsewhere enter as a SavedModel folder (its
``serving_default`` signature) or as a ``.keras`` file run on the TensorFlow backend;
both export through ``tf2onnx`` (the ``tensorflow`` extra). kfp-interop does not train
TensorFlow models itself (its Keras networks train on any Keras backend).

A SavedModel is a TensorFlow graph, not Python: loading it runs no code from the file,
but some graph ops read or write files or call into Python when run. Before running a
graph (the parity check runs it on the sample), kfp-interop refuses any that holds one
of :data:`REFUSED_OPS` (named); the ONNX model it exports cannot hold them at all.

A classifier's output is taken as probabilities when the graph computes it with a
``Softmax``, else as logits (both the native side and the ONNX graph then get a softmax).
"""

from __future__ import annotations

import os
from typing import Any

from kfp_interop.errors import ModelFileError, UnsupportedModelError, UntrustedModelError
from kfp_interop.frameworks.base import Framework, ForeignModel, check_task
from kfp_interop.frameworks.registry import register_framework

__all__ = ["TensorFlowFramework", "SavedModelFunction", "REFUSED_OPS", "import_tensorflow"]

SAVED_MODEL_FILE = "saved_model.pb"

#: Ops that touch files or call into Python when the graph runs. (The SaveV2/RestoreV2
#: ops a SavedModel uses for its own variables are not among them.)
REFUSED_OPS = frozenset({"ReadFile", "WriteFile", "MatchingFiles", "PyFunc",
                         "PyFuncStateless", "EagerPyFunc", "ImmutableConst",
                         "CreateSummaryFileWriter", "WriteSummary", "WriteRawProtoSummary",
                         "FixedLengthRecordReaderV2", "TFRecordReaderV2", "TextLineReaderV2",
                         "WholeFileReaderV2", "ParseExampleDatasetV2"})


def import_tensorflow():
    """Import TensorFlow quietly (its C++ logging off unless the user set it).

    Raises:
        UnsupportedModelError: TensorFlow is not installed.
    """
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        raise UnsupportedModelError("TensorFlow is not installed: pip install "
                                    "'kfp-interop[tensorflow]' (tensorflow-cpu and tf2onnx).")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # tf2onnx calls TF1-era APIs that warn each time
    return tf


class SavedModelFunction:
    """A SavedModel's serving signature as a model: one numeric input of shape
    ``(batch, n_features)``, one output (probabilities, logits or values)."""

    def __init__(self, path: str, signature, input_name: str, output_name: str,
                 n_features: int, n_outputs: int, softmax_inside: bool):
        self.path = path
        self.signature = signature
        self.input_name = input_name
        self.output_name = output_name
        self.n_features = n_features
        self.n_outputs = n_outputs
        #: the graph ends its output in a Softmax (else a classifier's output is logits)
        self.softmax_inside = softmax_inside

    def __call__(self, X):
        import numpy as np

        tf = import_tensorflow()
        out = self.signature(**{self.input_name: tf.constant(np.asarray(X, np.float32))})
        return np.asarray(out[self.output_name], dtype=np.float64)


def _graph_ops(path: str) -> set[str]:
    """Every op type in a SavedModel's graphs and function library."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    try:
        with open(os.path.join(path, SAVED_MODEL_FILE), "rb") as f:
            saved.ParseFromString(f.read())
    except Exception as e:  # noqa: BLE001 - protobuf raises DecodeError and others
        raise ModelFileError(f"{path!r}: {SAVED_MODEL_FILE} does not parse ({e}).") from e
    ops: set[str] = set()
    for meta in saved.meta_graphs:
        ops.update(n.op for n in meta.graph_def.node)
        for fn in meta.graph_def.library.function:
            ops.update(n.op for n in fn.node_def)
    return ops


def _ends_in_softmax(signature, output_name: str) -> bool:
    """Whether the signature's output is computed by a Softmax (through Identity ops)."""
    graph = signature.graph
    tensor = signature.structured_outputs[output_name]
    try:
        op = graph.get_tensor_by_name(tensor.name).op
    except (KeyError, ValueError):
        return False
    seen = 0
    while op.type in ("Identity", "IdentityN", "StatefulPartitionedCall",
                      "PartitionedCall") and seen < 50:
        seen += 1
        if op.type in ("StatefulPartitionedCall", "PartitionedCall"):
            fn_name = op.get_attr("f").name
            fn = graph._get_function(fn_name)  # noqa: SLF001 - the call's body
            if fn is None:
                return False
            graph = fn.graph
            op = graph.outputs[0].op
        else:
            op = op.inputs[0].op
    return op.type == "Softmax"


def read_saved_model(path: str, *, task: str = "") -> ForeignModel:
    """A SavedModel folder's ``serving_default`` signature, after the op check.

    Raises:
        ModelFileError: not a SavedModel, or no serving signature.
        UntrustedModelError: the graph holds an op of :data:`REFUSED_OPS`.
        UnsupportedModelError: not one numeric ``(batch, n)`` input and one output.
    """
    if not os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)):
        raise ModelFileError(f"{path!r} is not a TensorFlow SavedModel folder (no "
                             f"{SAVED_MODEL_FILE}): save it with tf.saved_model.save or "
                             "model.export(path) in Keras.")
    tf = import_tensorflow()
    refused = sorted(_graph_ops(path) & REFUSED_OPS)
    if refused:
        raise UntrustedModelError(f"The SavedModel {path!r} holds op(s) {refused}, which "
                                  "read or write files or call Python when run; kfp-interop "
                                  "does not run such graphs.")
    try:
        loaded = tf.saved_model.load(path)
    except Exception as e:  # noqa: BLE001
        raise ModelFileError(f"{path!r} did not load as a SavedModel: "
                             f"{(str(e).splitlines() or [''])[0][:300]}") from e
    signature = loaded.signatures.get("serving_default")
    if signature is None:
        raise ModelFileError(f"The SavedModel {path!r} has no 'serving_default' signature; "
                             f"it has {sorted(loaded.signatures)}.")
    inputs = signature.structured_input_signature[1]
    outputs = signature.structured_outputs
    if len(inputs) != 1 or len(outputs) != 1:
        raise UnsupportedModelError(
            f"The SavedModel {path!r} takes {sorted(inputs)} and returns {sorted(outputs)}; "
            "kfp-interop exports signatures with one input and one output (adopt an ONNX "
            "file converted with tf2onnx for others).")
    (input_name, in_spec), = inputs.items()
    (output_name, out_spec), = outputs.items()
    in_shape, out_shape = in_spec.shape.as_list(), out_spec.shape.as_list()
    if (len(in_shape) != 2 or in_shape[1] is None or not in_spec.dtype.is_floating
            or len(out_shape) != 2 or out_shape[1] is None):
        raise UnsupportedModelError(
            f"The SavedModel {path!r} maps {in_spec.dtype.name}{in_shape} to {out_shape}; "
            "kfp-interop exports models from rows of numbers (batch, n_features) to "
            "(batch, n_outputs).")
    found = "regression" if out_shape[1] == 1 else "classification"
    task = check_task(task, found, path)
    model = SavedModelFunction(path, signature, input_name, output_name, in_shape[1],
                               out_shape[1], _ends_in_softmax(signature, output_name))
    return ForeignModel(model, task, format="tf-savedmodel",
                        estimator=TensorFlowFramework().estimator_of(model),
                        n_features=in_shape[1],
                        n_classes=out_shape[1] if task == "classification" else None)


class TensorFlowFramework(Framework):
    name = "tensorflow"
    family = "imported"  # enters from files; not a choice of the train components
    distributions = ("tensorflow-cpu", "tensorflow")
    native_format, native_file = "tf-savedmodel", "saved_model"

    def read_foreign(self, path: str, *, task: str = "", n_features: int | None = None,
                     trusted_types: Any = None, architecture: str = "",
                     init_args: dict | None = None) -> ForeignModel:
        """A SavedModel folder, or a ``.keras`` file on the TensorFlow backend."""
        if path.endswith(".keras"):
            from kfp_interop.frameworks.keras import read_keras_file

            return read_keras_file(path, backend="tensorflow", task=task)
        return read_saved_model(self.locate(path), task=task)

    def estimator_of(self, model: Any) -> str:
        if isinstance(model, SavedModelFunction):
            return (f"tf.SavedModel(serving_default: {model.input_name} -> "
                    f"{model.output_name})")
        return f"keras.{type(model).__name__}"

    def locate(self, path: str) -> str:
        """The SavedModel folder itself, or the one inside a model folder."""
        inner = os.path.join(path, self.native_file)
        if not os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)) and os.path.isdir(inner):
            return inner
        return path

    def load(self, path: str, *, task: str, trusted_types: Any = None) -> tuple[Any, Any]:
        return self.read_foreign(path, task=task).model, None

    def save(self, model: Any, path: str, *, spec: Any = None) -> None:
        raise UnsupportedModelError("kfp-interop does not write TensorFlow models; they "
                                    "enter from SavedModel folders or .keras files.")

    def predict_proba(self, model: Any, X) -> Any:
        import numpy as np

        if not isinstance(model, SavedModelFunction):  # a Keras model
            return model.predict(np.asarray(X, np.float32), verbose=0)
        out = model(X)
        if model.softmax_inside:
            return out
        e = np.exp(out - out.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, model: Any, X) -> Any:
        import numpy as np

        if not isinstance(model, SavedModelFunction):
            return model.predict(np.asarray(X, np.float32), verbose=0)
        return model(X)


register_framework(TensorFlowFramework())
