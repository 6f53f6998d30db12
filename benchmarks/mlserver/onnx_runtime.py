"""A minimal ONNX Runtime runtime for MLServer (its documented extension point, a custom
``MLModel``), for benchmarks/serving.py: MLServer 1.7 has no ONNX runtime of its own.
The session is created as ours and Triton's stand-in are (CPU, the config's threads)."""

import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri


class OnnxRuntime(MLModel):
    async def load(self) -> bool:
        path = await get_model_uri(self._settings)
        options = ort.SessionOptions()
        extra = (self._settings.parameters.extra or {}) if self._settings.parameters else {}
        options.intra_op_num_threads = int(extra.get("intra_op_thread_count", 1))
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options,
                                            providers=["CPUExecutionProvider"])
        self.output_names = [o.name for o in self.session.get_outputs()]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feeds = {i.name: NumpyCodec.decode_input(i) for i in payload.inputs}
        results = self.session.run(self.output_names, feeds)
        return InferenceResponse(
            model_name=self.name, id=payload.id,
            outputs=[NumpyCodec.encode_output(name=n, payload=v)
                     for n, v in zip(self.output_names, results)])
