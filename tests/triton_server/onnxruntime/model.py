"""Test equipment, not product: an ONNX Runtime backend for Triton written as a Triton
Python-based backend, standing in for Triton's own ``onnxruntime`` backend (C++, not in
the ``nvidia-pytriton`` wheel that brings Triton to this machine). A ``config.pbtxt``
with ``platform: "onnxruntime_onnx"`` is routed to it by Triton.

Like the real backend, at load it checks the configuration against the ONNX graph
(every configured input and output exists, with the same data type and dims, -1 matching
any size; ``max_batch_size > 0`` adds the batch dimension) and refuses the model
otherwise; at infer it runs the graph with ONNX Runtime on the CPU.

The stub runs the system's libpython3.11 and reads no PYTHONPATH: the environment with
numpy and onnxruntime is put on ``sys.path`` from ``KFP_INTEROP_TRITON_SITE`` (tests/
triton/server.py writes it into the backend's folder as ``site.txt``).
"""

import json
import os
import sys

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "site.txt")) as _f:
    sys.path.insert(0, _f.read().strip())

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402

_ONNX_TO_TRITON = {
    "tensor(float)": "TYPE_FP32", "tensor(double)": "TYPE_FP64",
    "tensor(float16)": "TYPE_FP16", "tensor(int64)": "TYPE_INT64",
    "tensor(int32)": "TYPE_INT32", "tensor(int16)": "TYPE_INT16",
    "tensor(int8)": "TYPE_INT8", "tensor(uint8)": "TYPE_UINT8",
    "tensor(bool)": "TYPE_BOOL", "tensor(string)": "TYPE_STRING",
}


def _check(kind, configured, graph, batch):
    by_name = {t.name: t for t in graph}
    for tensor in configured:
        name = tensor["name"]
        if name not in by_name:
            raise pb_utils.TritonModelException(
                f"unexpected {kind} '{name}' in model configuration, the model has "
                f"{sorted(by_name)}")
        node = by_name[name]
        want = _ONNX_TO_TRITON.get(node.type, node.type)
        if tensor["data_type"] != want:
            raise pb_utils.TritonModelException(
                f"unexpected datatype {tensor['data_type']} for {kind} '{name}', model "
                f"provides {want}")
        shown = tensor["reshape"].get("shape", []) if "reshape" in tensor else tensor["dims"]
        dims = ([-1] if batch else []) + [int(d) for d in shown]
        shape = [d if isinstance(d, int) else -1 for d in node.shape]
        if len(dims) != len(shape) or any(
                a != b and -1 not in (a, b) for a, b in zip(dims, shape)):
            raise pb_utils.TritonModelException(
                f"unexpected shape for {kind} '{name}', model configuration has {dims}, "
                f"the model has {shape}")


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        path = os.path.join(args["model_repository"], args["model_version"],
                            config.get("default_model_filename") or "model.onnx")
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        batch = int(config.get("max_batch_size", 0)) > 0
        _check("input", config.get("input", []), self.session.get_inputs(), batch)
        _check("output", config.get("output", []), self.session.get_outputs(), batch)
        self.inputs = [t["name"] for t in config.get("input", [])]
        self.outputs = [t["name"] for t in config.get("output", [])]
        self.batch = batch

    def execute(self, requests):
        if self.batch and len(requests) > 1:
            merged = self._merged(requests)
            if merged is not None:
                return merged
        responses = []
        for request in requests:
            feed = {}
            for name in self.inputs:
                value = pb_utils.get_input_tensor_by_name(request, name).as_numpy()
                if value.dtype == np.object_:
                    value = np.vectorize(lambda v: v.decode() if isinstance(v, bytes)
                                         else str(v), otypes=[object])(value)
                feed[name] = value
            try:
                results = self.session.run(self.outputs, feed)
            except Exception as e:  # noqa: BLE001 - the error goes back to the client
                responses.append(pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(str(e))))
                continue
            tensors = []
            for name, value in zip(self.outputs, results):
                if value.dtype.kind in "OU":
                    value = np.array([str(v).encode() for v in value.ravel()],
                                     dtype=np.object_).reshape(value.shape)
                tensors.append(pb_utils.Tensor(name, value))
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses

    def _merged(self, requests):
        """The requests Triton's dynamic batcher handed over, run as one ONNX Runtime
        call and split back (what the C++ backend does); None when they cannot be
        concatenated (then one by one)."""
        feeds = {name: [pb_utils.get_input_tensor_by_name(r, name).as_numpy()
                        for r in requests] for name in self.inputs}
        if any(v.dtype == np.object_ for vs in feeds.values() for v in vs):
            return None
        sizes = [v.shape[0] for v in feeds[self.inputs[0]]]
        try:
            results = self.session.run(self.outputs, {n: np.concatenate(vs)
                                                      for n, vs in feeds.items()})
        except Exception:  # noqa: BLE001 - one by one, each its own error
            return None
        responses, offset = [], 0
        for size in sizes:
            tensors = [pb_utils.Tensor(name, np.ascontiguousarray(value[offset:offset + size]))
                       for name, value in zip(self.outputs, results)]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            offset += size
        return responses
