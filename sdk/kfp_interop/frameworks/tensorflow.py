"""TensorFlow: models trained elsewhere enter as a SavedModel folder (its
``serving_default`` signature) or as a ``.keras`` file run on the TensorFlow backend;
both export through ``tf2onnx`` (the ``tensorflow`` extra). kfp-interop does not train
TensorFlow models itself (its Keras networks train on any Keras backend).

A SavedModel is a TensorFlow graph, not Python: loading it runs no code from the file,
but some graph ops read or write files or call into Python when run. Before running a
graph (the parity check runs it on the sample), kfp-interop refuses any that holds one
of :data:`REFUSED_OPS` (named); the ONNX model it exports cannot hold them at all.

A classifier's output is taken as probabilities when the graph computes it with a
``Softmax``, as P(class 1) when one column comes from a ``Sigmoid``, else as logits (both
the native side and the ONNX graph then get a softmax).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from kfp_interop.constants import PROBABILITIES_OUTPUT
from kfp_interop.errors import ModelFileError, UnsupportedModelError, UntrustedModelError
from kfp_interop.frameworks.base import (Framework, ForeignModel, check_task,
                                         probabilities_from)
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
    ``(batch, n_features)``, and the one output it is exported with (probabilities,
    logits, P(class 1) or values: :attr:`output_kind`)."""

    def __init__(self, path: str, signature, input_name: str, output_name: str,
                 n_features: int, n_outputs: int, ignored_outputs: tuple = ()):
        self.path = path
        self.signature = signature
        self.input_name = input_name
        self.output_name = output_name
        self.n_features = n_features
        self.n_outputs = n_outputs
        #: other outputs of the signature, not exported (a ``label`` beside
        #: ``probabilities``: the interface's label is the probabilities' argmax)
        self.ignored_outputs = tuple(ignored_outputs)
        #: what the output holds (:data:`~kfp_interop.frameworks.base.OUTPUT_KINDS`)
        self.output_kind = "values"
        self._frozen = None

    def __call__(self, X):
        import numpy as np

        tf = import_tensorflow()
        out = self.signature(**{self.input_name: tf.constant(np.asarray(X, np.float32))})
        return np.asarray(out[self.output_name], dtype=np.float64)

    def frozen(self) -> tuple:
        """The signature as tf2onnx converts it: ``(graph_def, input tensor names,
        [the exported output's tensor name], tensors_to_rename)`` (computed once).

        Raises:
            ModelFileError: tf2onnx's loader cannot freeze the SavedModel.
        """
        if self._frozen is None:
            import_tensorflow()
            from tf2onnx import tf_loader

            logging.getLogger("tf2onnx").setLevel(logging.ERROR)
            try:
                graph_def, inputs, outputs, _tables, renames = tf_loader.from_saved_model(
                    self.path, None, None, signatures=["serving_default"],
                    return_initialized_tables=True, return_tensors_to_rename=True)
            except Exception as e:  # noqa: BLE001 - tf2onnx raises many types
                raise ModelFileError(
                    f"tf2onnx could not read the SavedModel {self.path!r}: "
                    f"{(str(e).splitlines() or [type(e).__name__])[0][:300]}. Save it "
                    "again with tf.saved_model.save (or Keras' model.export).") from e
            chosen = [t for t in outputs if renames.get(t) == self.output_name]
            if len(chosen) != 1:
                raise ModelFileError(f"The SavedModel {self.path!r}: the output "
                                     f"{self.output_name!r} was not found in its frozen graph.")
            self._frozen = (graph_def, inputs, chosen, renames)
        return self._frozen

    def producer(self) -> str:
        """The op that computes the exported output (past Identity ops), e.g. Softmax."""
        graph_def, _inputs, (tensor,), _renames = self.frozen()
        nodes = {n.name: n for n in graph_def.node}
        node = nodes.get(tensor.split(":")[0])
        for _ in range(100):
            if node is None or node.op not in _PASS_THROUGH or not node.input:
                break
            node = nodes.get(node.input[0].split(":")[0].lstrip("^"))
        return node.op if node is not None else ""


#: ops that pass their input on unchanged
_PASS_THROUGH = frozenset({"Identity", "IdentityN", "StopGradient", "Snapshot"})


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


def _choose_output(path: str, outputs: dict) -> tuple[str, tuple]:
    """The signature output to export, and the ones left out."""
    if len(outputs) == 1:
        return next(iter(outputs)), ()
    if PROBABILITIES_OUTPUT in outputs:
        return PROBABILITIES_OUTPUT, tuple(sorted(k for k in outputs
                                                  if k != PROBABILITIES_OUTPUT))
    raise UnsupportedModelError(
        f"The SavedModel {path!r} returns {sorted(outputs)}; kfp-interop exports one "
        f"output. Name the class probabilities {PROBABILITIES_OUTPUT!r} in the signature "
        "(the others are then left out: the label is their argmax), or save a signature "
        "with one output.")


def read_saved_model(path: str, *, task: str = "") -> ForeignModel:
    """A SavedModel folder's ``serving_default`` signature, after the op check.

    The output exported is the signature's only one, or the one named
    ``probabilities`` among several. A ``Softmax`` computing it means probabilities;
    a ``Sigmoid`` computing one column means P(class 1) of a binary classifier; other
    outputs are logits (width > 1: a softmax is added on both sides) or values (width 1).

    Raises:
        ModelFileError: not a SavedModel, or no serving signature.
        UntrustedModelError: the graph holds an op of :data:`REFUSED_OPS`.
        UnsupportedModelError: not one numeric ``(batch, n)`` input, or several outputs
            none of which is ``probabilities``.
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
    if len(inputs) != 1:
        raise UnsupportedModelError(
            f"The SavedModel {path!r} takes {sorted(inputs)}; kfp-interop exports "
            "signatures with one input (adopt an ONNX file converted with tf2onnx for "
            "others).")
    output_name, ignored = _choose_output(path, outputs)
    (input_name, in_spec), = inputs.items()
    out_spec = outputs[output_name]
    in_shape, out_shape = in_spec.shape.as_list(), out_spec.shape.as_list()
    if len(out_shape) == 1:  # one value per row
        out_shape = out_shape + [1]
    if (len(in_shape) != 2 or in_shape[1] is None or not in_spec.dtype.is_floating
            or len(out_shape) != 2 or out_shape[1] is None or not out_spec.dtype.is_floating):
        raise UnsupportedModelError(
            f"The SavedModel {path!r} maps {in_spec.dtype.name}{in_shape} to "
            f"{out_spec.dtype.name}{out_spec.shape.as_list()} ({output_name!r}); kfp-interop "
            "exports models from rows of numbers (batch, n_features) to numbers (batch, "
            "n_outputs).")
    model = SavedModelFunction(path, signature, input_name, output_name, in_shape[1],
                               out_shape[1], ignored)
    producer = model.producer()
    kind = ("probabilities" if producer == "Softmax" and out_shape[1] > 1 else
            "sigmoid" if producer == "Sigmoid" and out_shape[1] == 1 else
            "logits" if out_shape[1] > 1 else "values")
    found = "regression" if kind == "values" else "classification"
    task = check_task(task, found, path)
    if task == "regression" and kind == "sigmoid":
        kind = "values"  # the user says the one sigmoid column is a value
    model.output_kind = kind
    return ForeignModel(model, task, format="tf-savedmodel",
                        estimator=TensorFlowFramework().estimator_of(model),
                        n_features=in_shape[1],
                        n_classes=(2 if kind == "sigmoid" else out_shape[1])
                        if task == "classification" else None)


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
        if not isinstance(model, SavedModelFunction):  # a Keras model
            from kfp_interop.frameworks.keras import keras_probabilities

            return keras_probabilities(model, X)
        return probabilities_from(model(X), model.output_kind)

    def predict(self, model: Any, X) -> Any:
        import numpy as np

        if not isinstance(model, SavedModelFunction):
            return model.predict(np.asarray(X, np.float32), verbose=0)
        return model(X)


register_framework(TensorFlowFramework())
