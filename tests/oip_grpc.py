"""A small OIP gRPC client for the tests, on the server's own messages (a descriptor pool
of their own): Triton's and KServe's clients register the same proto names in
protobuf's global pool, so a test process that imports one cannot import the other;
their own tests run them in subprocesses (tests/test_grpc.py)."""

import grpc
import numpy as np

from kfp_interop.serving.grpc_server import SERVICE, messages

_NUMPY = {"BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
          "UINT64": np.uint64, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
          "INT64": np.int64, "FP16": np.float16, "FP32": np.float32, "FP64": np.float64}


class Client:
    def __init__(self, address: str):
        self.channel = grpc.insecure_channel(address, options=[
            ("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)])
        self.m = messages()

    def _call(self, method: str, request, response: str, timeout: float = 30):
        call = self.channel.unary_unary(f"/{SERVICE}/{method}",
                                        request_serializer=type(request).SerializeToString,
                                        response_deserializer=self.m[response].FromString)
        return call(request, timeout=timeout)

    def live(self) -> bool:
        return self._call("ServerLive", self.m["ServerLiveRequest"](),
                          "ServerLiveResponse").live

    def ready(self, name: str = "", version: str = "") -> bool:
        if not name:
            return self._call("ServerReady", self.m["ServerReadyRequest"](),
                              "ServerReadyResponse").ready
        return self._call("ModelReady", self.m["ModelReadyRequest"](name=name,
                                                                    version=version),
                          "ModelReadyResponse").ready

    def index(self) -> list[dict]:
        answer = self._call("RepositoryIndex", self.m["RepositoryIndexRequest"](),
                            "RepositoryIndexResponse")
        return [{"name": m.name, "version": m.version, "state": m.state,
                 "reason": m.reason} for m in answer.models]

    def load(self, name: str) -> None:
        self._call("RepositoryModelLoad", self.m["RepositoryModelLoadRequest"](
            model_name=name), "RepositoryModelLoadResponse")

    def unload(self, name: str) -> None:
        self._call("RepositoryModelUnload", self.m["RepositoryModelUnloadRequest"](
            model_name=name), "RepositoryModelUnloadResponse")

    def infer(self, name: str, inputs: dict, *, version: str = "", raw: bool = True,
              request_id: str = "") -> tuple[dict, object]:
        """``({output name: array}, the response message)``."""
        request = self.m["ModelInferRequest"](model_name=name, model_version=version,
                                              id=request_id)
        for input_name, arr in inputs.items():
            t = request.inputs.add(name=input_name, datatype="FP32", shape=list(arr.shape))
            if raw:
                request.raw_input_contents.append(
                    np.ascontiguousarray(arr, "<f4").tobytes())
            else:
                t.contents.fp32_contents.extend(arr.reshape(-1).tolist())
        response = self._call("ModelInfer", request, "ModelInferResponse")
        out = {}
        for tensor, raw_bytes in zip(response.outputs, response.raw_output_contents):
            shape = [int(d) for d in tensor.shape]
            if tensor.datatype == "BYTES":
                items, pos = [], 0
                while pos < len(raw_bytes):
                    size = int.from_bytes(raw_bytes[pos:pos + 4], "little")
                    items.append(raw_bytes[pos + 4:pos + 4 + size])
                    pos += 4 + size
                out[tensor.name] = np.array(items, dtype=object).reshape(shape)
            else:
                out[tensor.name] = np.frombuffer(raw_bytes, _NUMPY[tensor.datatype]
                                                 ).reshape(shape)
        return out, response
