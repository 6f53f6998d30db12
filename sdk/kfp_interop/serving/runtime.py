"""ONNX models behind the Open Inference Protocol: loading, checking decoded inputs
against the model's tensors, and inference. No web framework here (see ``app.py``), no
wire format either (see ``codec.py``).

Errors are the serving errors of :mod:`kfp_interop.errors`, mapped to HTTP statuses in
one place there (400 bad request, 404 unknown model or version, 503 model not ready).
"""

from __future__ import annotations

import threading
from typing import Any

from kfp_interop.constants import PLATFORM
from kfp_interop.errors import (InferenceRequestError, MetadataValidationError,
                                ModelNotFoundError, ModelNotReadyError)

__all__ = ["ServedModel", "ModelRepository"]


class ServedModel:
    """One ONNX model with its record; loads in the background (ready when loaded)."""

    def __init__(self, path: str, name: str | None = None, *, threads: int = 1):
        self.path = path
        self.threads = threads
        self.requested_name = name
        self.record = None
        self.metadata: dict[str, Any] | None = None
        self.error: str | None = None
        self._session = None
        self._inputs: dict[str, dict] = {}
        self._output_names: list[str] = []
        self._ready = threading.Event()
        self.name = name or "model"
        self.version = "1"

    # -- loading -------------------------------------------------------------
    def load(self) -> "ServedModel":
        """Load synchronously; on failure keep the error (the model stays not ready)."""
        try:
            self._load()
        except Exception as e:  # noqa: BLE001 - reported through /ready and the logs
            self.error = f"{type(e).__name__}: {e}"
            raise
        self._ready.set()
        return self

    def _load(self) -> None:
        from kfp_interop.metadata import embedded_record
        from kfp_interop.metadata.render import to_oip
        from kfp_interop.onnx_model import ort_session, read_onnx, tensor_specs

        model = read_onnx(self.path)
        inputs, outputs = tensor_specs(model)
        record = embedded_record(model, self.path, required=False)
        if record is not None:
            if record.inputs != inputs or record.outputs != outputs:
                raise MetadataValidationError(
                    f"{self.path!r}: the record's tensors {record.inputs}/{record.outputs} "
                    f"differ from the graph's {inputs}/{outputs}; re-attach the metadata.")
            self.record = record
            self.name = self.requested_name or record.name
            self.version = record.version
            self.metadata = to_oip(record)
            self.metadata["name"] = self.name
        else:  # an ONNX file made elsewhere: describe it from its graph
            self.metadata = {"name": self.name, "versions": [self.version],
                             "platform": PLATFORM, "inputs": inputs,
                             "outputs": outputs, "properties": {}}
        self._session = ort_session(model, threads=self.threads)
        self._inputs = {t["name"]: t for t in inputs}
        self._output_names = [t["name"] for t in outputs]
        self._outputs = {t["name"]: t for t in outputs}

    def load_in_background(self) -> threading.Thread:
        def run():
            try:
                self.load()
            except Exception:  # noqa: BLE001 - kept in self.error
                pass

        t = threading.Thread(target=run, name=f"load-{self.name}", daemon=True)
        t.start()
        return t

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def check_ready(self) -> None:
        if not self.ready:
            state = f"failed to load: {self.error}" if self.error else "is loading"
            raise ModelNotReadyError(f"Model {self.name!r} {state}.")

    # -- inference -----------------------------------------------------------
    def infer(self, inputs: dict[str, Any], requested: list[dict] | None):
        """Validate decoded inputs against the model, run it, return [(spec, array)]."""
        import numpy as np

        self.check_ready()
        missing = sorted(set(self._inputs) - set(inputs))
        if missing:
            raise InferenceRequestError(f"Missing input(s) {missing} for model {self.name!r}; "
                                        f"it takes {sorted(self._inputs)}.")
        feeds = {}
        for name, (datatype, arr) in inputs.items():
            spec = self._inputs.get(name)
            if spec is None:
                raise InferenceRequestError(f"Unknown input {name!r} for model {self.name!r}; "
                                            f"it takes {sorted(self._inputs)}.")
            if datatype != spec["datatype"]:
                raise InferenceRequestError(
                    f"Input {name!r} has datatype {datatype!r}; model {self.name!r} expects "
                    f"{spec['datatype']!r}.")
            want = spec["shape"]
            if len(arr.shape) != len(want) or any(w != -1 and w != g
                                                  for w, g in zip(want, arr.shape)):
                raise InferenceRequestError(
                    f"Input {name!r} has shape {list(arr.shape)}; model {self.name!r} expects "
                    f"{want} (-1 = any size).")
            feeds[name] = arr
        names = self._output_names
        if requested:
            unknown = [o.get("name") for o in requested if o.get("name") not in self._outputs]
            if unknown:
                raise InferenceRequestError(f"Unknown output(s) {unknown} for model "
                                            f"{self.name!r}; it returns {names}.")
            names = [o["name"] for o in requested]
        try:
            results = self._session.run(names, feeds)
        except Exception as e:  # onnxruntime raises its own Fail/InvalidArgument types
            raise InferenceRequestError(f"Model {self.name!r} rejected the input: {e}") from e
        return [(self._outputs[n], np.asarray(r)) for n, r in zip(names, results)]


class ModelRepository:
    """The models a server holds, by name."""

    def __init__(self, models: list[ServedModel]):
        self._models = models

    def names(self) -> list[str]:
        return [m.name for m in self._models]

    def get(self, name: str, version: str | None = None) -> ServedModel:
        for m in self._models:
            if m.name == name:
                if version is not None and m.ready and version != m.version:
                    raise ModelNotFoundError(f"Model {name!r} has no version {version!r}; "
                                             f"it serves version {m.version!r}.")
                return m
        raise ModelNotFoundError(f"Unknown model {name!r}; this server serves "
                                 f"{self.names()}.")

    @property
    def ready(self) -> bool:
        return all(m.ready for m in self._models)
