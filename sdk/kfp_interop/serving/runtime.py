"""ONNX models behind the Open Inference Protocol: loading, checking decoded inputs
against the model's tensors, and inference. No web framework here (see ``app.py``), no
wire format either (see ``codec.py``).

Errors are the serving errors of :mod:`kfp_interop.errors`, mapped to HTTP statuses in
one place there (400 bad request, 404 unknown model or version, 503 model not ready).
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from kfp_interop.constants import PLATFORM
from kfp_interop.errors import (InferenceRequestError, MetadataValidationError,
                                ModelLoadError, ModelNotReadyError)

__all__ = ["ServedModel", "Batching", "feed_rows"]


def feed_rows(feeds: dict[str, Any]) -> int:
    """The rows of a request: the largest first dimension of its inputs (1 for scalars
    or no inputs)."""
    return max((a.shape[0] if a.ndim else 1) for a in feeds.values()) if feeds else 1


@dataclasses.dataclass(frozen=True)
class Batching:
    """Dynamic batching as Triton's ``dynamic_batching`` means it: concurrent requests
    for one model are merged, up to ``max_batch_size`` rows, waiting at most
    ``max_queue_delay_us`` for others to join; a batch that reaches one of the
    ``preferred_batch_sizes`` goes at once when no more requests are waiting."""

    max_batch_size: int
    max_queue_delay_us: int = 0
    preferred_batch_sizes: tuple[int, ...] = ()

    def __post_init__(self):
        from kfp_interop.errors import InvalidInputError

        if (not isinstance(self.max_batch_size, int) or self.max_batch_size < 1
                or not isinstance(self.max_queue_delay_us, int) or self.max_queue_delay_us < 0
                or any(not isinstance(p, int) or not 1 <= p <= self.max_batch_size
                       for p in self.preferred_batch_sizes)):
            raise InvalidInputError(
                f"Batching max_batch_size={self.max_batch_size!r}, max_queue_delay_us="
                f"{self.max_queue_delay_us!r}, preferred_batch_sizes="
                f"{list(self.preferred_batch_sizes)!r}: the size must be a positive "
                "integer, the delay a non-negative number of microseconds, and each "
                "preferred size between 1 and the maximum.")

    @classmethod
    def from_record(cls, block: dict | None) -> "Batching | None":
        """From a record's ``serving.dynamic_batching`` block (None: not batched)."""
        if not block:
            return None
        return cls(int(block["max_batch_size"]), int(block.get("max_queue_delay_us", 0)),
                   tuple(int(p) for p in block.get("preferred_batch_sizes", ())))

    def to_record(self) -> dict:
        return {"max_batch_size": self.max_batch_size,
                "max_queue_delay_us": self.max_queue_delay_us,
                **({"preferred_batch_sizes": list(self.preferred_batch_sizes)}
                   if self.preferred_batch_sizes else {})}


class ServedModel:
    """One ONNX model (one version) with its record; loads in the background (ready
    when loaded).

    Args:
        name: the served name (default: the record's, else ``model``).
        version: the served version (default: the record's; a repository's version
            folder gives it).
        batching: dynamic batching (default: the record's ``serving.dynamic_batching``,
            if any); ``False`` turns it off whatever the record says.
    """

    def __init__(self, path: str, name: str | None = None, *, threads: int = 1,
                 version: str | None = None, batching: "Batching | None | bool" = None):
        self.path = path
        self.threads = threads
        self.requested_name = name
        self.requested_version = version
        self.requested_batching = batching
        self.batching: Batching | None = None
        self.record = None
        self.metadata: dict[str, Any] | None = None
        self.error: str | None = None
        self._session = None
        self._inputs: dict[str, dict] = {}
        self._output_names: list[str] = []
        self._ready = threading.Event()
        self.name = name or "model"
        self.version = version or "1"

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
            self.version = self.requested_version or record.version
            self.metadata = to_oip(record)
            self.metadata["name"] = self.name
            self.metadata["versions"] = [self.version]
        else:  # an ONNX file made elsewhere: describe it from its graph
            self.metadata = {"name": self.name, "versions": [self.version],
                             "platform": PLATFORM, "inputs": inputs,
                             "outputs": outputs, "properties": {}}
        batching = self.requested_batching
        if batching is None and record is not None:
            batching = Batching.from_record((record.serving or {}).get("dynamic_batching"))
        if batching:
            unbatched = [t["name"] for t in inputs + outputs
                         if not t["shape"] or t["shape"][0] != -1]
            if unbatched:
                raise ModelLoadError(
                    f"Model {self.name!r} cannot be batched: tensor(s) {unbatched} have no "
                    "batch dimension (a first dimension of any size, -1). Serve it without "
                    "--max-batch-size, or export it with a batch dimension.")
            self.batching = batching
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
        feeds, names = self.validate(inputs, requested)
        return self.run(feeds, names)

    def validate(self, inputs: dict[str, Any], requested: list[dict] | None
                 ) -> tuple[dict[str, Any], list[str]]:
        """Decoded inputs checked against the model: ``(feeds by name, output names)``.

        Raises:
            ModelNotReadyError, InferenceRequestError: named.
        """
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
        return feeds, names

    def run(self, feeds: dict[str, Any], names: list[str]):
        """Run validated ``feeds`` (see :meth:`validate`): ``[(output spec, array)]``."""
        import numpy as np

        try:
            results = self._session.run(names, feeds)
        except Exception as e:  # onnxruntime raises its own Fail/InvalidArgument types
            raise InferenceRequestError(f"Model {self.name!r} rejected the input: {e}") from e
        return [(self._outputs[n], np.asarray(r)) for n, r in zip(names, results)]
