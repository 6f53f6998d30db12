"""A small Open Inference Protocol client: one request, readiness polling, and the one
check that a live endpoint serves the model its record describes (the deploy step and
the smoke test both use it)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from kfp_interop.errors import SmokeTestError

if TYPE_CHECKING:  # pragma: no cover
    from kfp_interop.metadata import InferenceMetadata

__all__ = ["http_json", "wait_model_ready", "metadata_mismatches"]


def http_json(method: str, url: str, body: Any = None, *, timeout: float = 10.0,
              binary: bytes | None = None, headers: dict | None = None):
    """(status, parsed JSON or text) for one request; connection errors raise SmokeTestError.

    With ``binary``, the JSON ``body`` is followed by those bytes (OIP binary tensor data).
    """
    headers = {"Content-Type": "application/json", **(headers or {})}
    data = None if body is None else json.dumps(body).encode()
    if binary is not None:
        headers["Inference-Header-Content-Length"] = str(len(data))
        headers["Content-Type"] = "application/octet-stream"
        data += binary
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw, status = r.read(), r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        raise SmokeTestError(f"Cannot reach {url}: {e}. Is the endpoint up?",
                             {"passed": False, "url": url, "error": str(e)}) from e
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def wait_model_ready(endpoint: str, name: str, *, timeout: float,
                     headers: dict | None = None, poll: float = 1.0) -> str | None:
    """Poll ``/v2/models/{name}/ready`` until 200; ``None`` when ready, else the last
    answer (or connection error) once ``timeout`` passed."""
    end = time.monotonic() + timeout
    while True:
        try:
            status, body = http_json("GET", f"{endpoint}/v2/models/{name}/ready", timeout=5,
                                     headers=headers)
            if status == 200:
                return None
            last = f"answered {status}: {body}"
        except SmokeTestError as e:
            last = str(e)
        if time.monotonic() > end:
            return last
        time.sleep(poll)


def metadata_mismatches(served: Any, record: "InferenceMetadata") -> list[str]:
    """The fields in which a served ``GET /v2/models/{name}`` answer differs from the
    record: platform, input and output tensors, the version (when the server lists
    versions), and the ``onnx_sha256`` property (when the server reports one). Empty
    when the endpoint serves *this* model, not just *a* model."""
    from kfp_interop.metadata.render import to_oip

    if not isinstance(served, dict):
        return ["(not an OIP metadata object)"]
    want = to_oip(record)
    diffs = [k for k in ("platform", "inputs", "outputs") if served.get(k) != want[k]]
    if record.version not in (served.get("versions") or [record.version]):
        diffs.append("versions")
    props = served.get("properties") if isinstance(served.get("properties"), dict) else {}
    served_sha = props.get("onnx_sha256")
    if served_sha is not None and served_sha != record.model["onnx_sha256"]:
        diffs.append("properties.onnx_sha256")
    return diffs


def grpc_address(endpoint: str) -> tuple[str, bool]:
    """``(host:port, TLS)`` of an endpoint URL for gRPC (``https://h`` -> ``h:443``)."""
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    secure = parts.scheme == "https"
    return f"{parts.hostname}:{parts.port or (443 if secure else 80)}", secure


def grpc_wait_metadata(endpoint: str, name: str, *, timeout: float,
                       headers: dict | None = None, poll: float = 1.0
                       ) -> tuple[dict | None, str | None]:
    """Over the OIP gRPC service: wait until ``name`` is ready, then its metadata as the
    REST answer has it. ``(metadata, None)``, or ``(None, the last problem)`` once
    ``timeout`` passed."""
    import grpc

    from kfp_interop.serving.grpc_server import SERVICE, messages

    m = messages()
    address, secure = grpc_address(endpoint)
    channel = (grpc.secure_channel(address, grpc.ssl_channel_credentials()) if secure
               else grpc.insecure_channel(address))
    metadata = tuple((k.lower(), v) for k, v in (headers or {}).items())

    def rpc(method, request, response):
        call = channel.unary_unary(f"/{SERVICE}/{method}",
                                   request_serializer=m[request].SerializeToString,
                                   response_deserializer=m[response].FromString)
        return call

    ready = rpc("ModelReady", "ModelReadyRequest", "ModelReadyResponse")
    meta = rpc("ModelMetadata", "ModelMetadataRequest", "ModelMetadataResponse")
    end = time.monotonic() + timeout
    try:
        while True:
            try:
                if ready(m["ModelReadyRequest"](name=name), timeout=5,
                         metadata=metadata).ready:
                    answer = meta(m["ModelMetadataRequest"](name=name), timeout=5,
                                  metadata=metadata)
                    return {"name": answer.name, "versions": list(answer.versions),
                            "platform": answer.platform,
                            **{kind: [{"name": t.name, "datatype": t.datatype,
                                       "shape": [int(d) for d in t.shape]}
                                      for t in getattr(answer, kind)]
                               for kind in ("inputs", "outputs")}}, None
                last = "ModelReady answered not ready"
            except grpc.RpcError as e:
                last = f"{e.code().name}: {e.details()}"
            if time.monotonic() > end:
                return None, last
            time.sleep(poll)
    finally:
        channel.close()
