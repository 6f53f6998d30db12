"""Render the inference-metadata record into each dialect the ecosystem speaks.

=========  ==========================================================================
format     what it produces
=========  ==========================================================================
oip        Open Inference Protocol (KServe V2) model-metadata response (a dict)
seldon     Seldon Core v1 model metadata: ``messagetype``/``schema`` tensors + ``custom``
mlflow     MLflow ``ModelSignature.to_dict()`` form (tensor-based)
triton     Triton ``config.pbtxt`` text, platform ``onnxruntime_onnx``
kfp        KFP artifact ``metadata`` dict (what the Kubeflow UI shows on a Model)
markdown   a model card (Markdown)
=========  ==========================================================================

None of these imports its ecosystem's library: they are plain data, tested against
the real schemas (OIP JSON Schema, Triton's ModelConfig proto, MLflow's signature class).
"""

from __future__ import annotations

import json
from typing import Any, Callable

from kfp_interop.metadata import InferenceMetadata
from kfp_interop.metadata.dtypes import oip_to_mlflow, oip_to_triton
from kfp_interop.registry import Registry

__all__ = ["RENDERERS", "render", "to_oip", "to_seldon", "to_mlflow_signature",
           "to_triton_config", "to_kfp_metadata", "to_model_card", "properties"]


def properties(record: InferenceMetadata) -> dict[str, str]:
    """Key facts as a flat string map (OIP ``properties``, Seldon ``custom``, tags)."""
    m, fw, tr, par = record.model, record.framework, record.training, record.parity
    out = {
        "kfp_interop.schema_version": record.schema_version,
        "task": m["task"],
        "framework": fw["name"],
        "framework_version": fw["version"],
        "estimator": fw["estimator"],
        "onnx_opset": str(m["onnx_opset"]),
        "onnx_sha256": m["onnx_sha256"],
        "data_sha256": tr["data_sha256"],
        "feature_names": json.dumps(record.feature_names),
        "parity_max_abs_diff": repr(par["max_abs_diff"]),
        "parity_passed": str(par["passed"]).lower(),
        "kfp_interop_version": record.producer["version"],
    }
    if record.class_labels is not None:
        out["class_labels"] = json.dumps(record.class_labels)
    return out


def to_oip(record: InferenceMetadata) -> dict[str, Any]:
    """``GET /v2/models/{name}`` response (``metadata_model_response``)."""
    return {
        "name": record.name,
        "versions": [record.version],
        "platform": record.model["platform"],
        "inputs": record.inputs,
        "outputs": record.outputs,
        "properties": properties(record),
    }


def to_seldon(record: InferenceMetadata) -> dict[str, Any]:
    """Seldon Core v1 model metadata (as ``init_metadata`` or ``MODEL_METADATA`` give it)."""

    def tensor(t: dict, names: list[str] | None) -> dict:
        schema: dict[str, Any] = {"shape": [d for d in t["shape"][1:]]}
        if names:
            schema["names"] = names
        return {"name": t["name"], "datatype": t["datatype"], "messagetype": "tensor",
                "schema": schema}

    outputs = []
    for o in record.outputs:
        outputs.append(tensor(o, record.class_labels if o["name"] == "probabilities" else None))
    return {
        "name": record.name,
        "versions": [record.version],
        "platform": "seldon",
        "inputs": [tensor(i, record.feature_names) for i in record.inputs],
        "outputs": outputs,
        "custom": properties(record),
    }


def to_mlflow_signature(record: InferenceMetadata) -> dict[str, Any]:
    """The dict ``mlflow.models.ModelSignature.from_dict`` accepts (tensor-based)."""

    def specs(tensors: list[dict]) -> str:
        return json.dumps([{"type": "tensor", "name": t["name"],
                            "tensor-spec": {"dtype": oip_to_mlflow(t["datatype"]),
                                            "shape": t["shape"]}} for t in tensors])

    return {"inputs": specs(record.inputs), "outputs": specs(record.outputs), "params": None}


def to_triton_config(record: InferenceMetadata, *, max_batch_size: int = 0,
                     instance_count: int = 1) -> str:
    """Triton ``config.pbtxt``. With ``max_batch_size: 0`` the dims keep the batch (-1)."""

    def tensors(kind: str, items: list[dict]) -> str:
        parts = []
        for t in items:
            dims = t["shape"][1:] if max_batch_size > 0 else t["shape"]
            parts.append(f'  {{\n    name: "{t["name"]}"\n    data_type: '
                         f'{oip_to_triton(t["datatype"])}\n    dims: '
                         f'[ {", ".join(str(d) for d in dims)} ]\n  }}')
        return f"{kind} [\n" + ",\n".join(parts) + "\n]\n"

    head = (f'name: "{record.name}"\nplatform: "{record.model["platform"]}"\n'
            f"max_batch_size: {max_batch_size}\n")
    tail = (f"version_policy: {{ specific: {{ versions: [ {record.version} ] }} }}\n"
            f"instance_group [\n  {{\n    count: {instance_count}\n    kind: KIND_CPU\n  }}\n]\n")
    params = "".join(
        f'parameters {{\n  key: "{k}"\n  value: {{ string_value: {json.dumps(v)} }}\n}}\n'
        for k, v in sorted(properties(record).items()))
    return head + tensors("input", record.inputs) + tensors("output", record.outputs) + tail + params


def to_kfp_metadata(record: InferenceMetadata) -> dict[str, Any]:
    """Artifact metadata for a KFP ``Model``: the record plus flat keys the UI lists."""
    m = record.model
    return {
        "model_name": m["name"],
        "model_version": m["version"],
        "framework": record.framework["name"],
        "task": m["task"],
        "runtime": m["platform"],
        "onnx_opset": m["onnx_opset"],
        "onnx_sha256": m["onnx_sha256"],
        "inputs": record.inputs,
        "outputs": record.outputs,
        "parity_passed": record.parity["passed"],
        "parity_max_abs_diff": record.parity["max_abs_diff"],
        "inference_metadata": record.to_dict(),
    }


def to_model_card(record: InferenceMetadata) -> str:
    """A Markdown model card (what the Kubeflow UI shows for a Markdown artifact)."""
    m, fw, tr, par = record.model, record.framework, record.training, record.parity
    rows = lambda items: "\n".join(f"| {k} | {v} |" for k, v in items)  # noqa: E731
    tensors = lambda ts: "\n".join(  # noqa: E731
        f"| `{t['name']}` | {t['datatype']} | {t['shape']} |" for t in ts)
    metrics = "\n".join(f"| {k} | {v:.4f} |" for k, v in sorted(tr["metrics"].items()))
    labels = ", ".join(record.class_labels) if record.class_labels else "(regression)"
    return f"""# Model card: {m['name']} v{m['version']}

| field | value |
|---|---|
{rows([("task", m["task"]), ("framework", f"{fw['name']} {fw['version']} ({fw['estimator']})"),
       ("platform", m["platform"]), ("ONNX opset", m["onnx_opset"]),
       ("ONNX sha256", f"`{m['onnx_sha256']}`"), ("data set", tr["dataset"]),
       ("data sha256", f"`{tr['data_sha256']}`"), ("rows", tr["rows"]), ("seed", tr["seed"]),
       ("hyperparameters", f"`{json.dumps(tr['hyperparameters'], sort_keys=True)}`"),
       ("classes", labels)])}

## Inputs
| name | datatype | shape |
|---|---|---|
{tensors(record.inputs)}

Features, in order: {", ".join(f"`{f}`" for f in record.feature_names)}

## Outputs
| name | datatype | shape |
|---|---|---|
{tensors(record.outputs)}

## Held-out metrics
| metric | value |
|---|---|
{metrics}

## Parity (native vs ONNX Runtime)
{"passed" if par["passed"] else "FAILED"} on {par["n_rows"]} rows: max abs diff {par["max_abs_diff"]:.3g}, label agreement {par["label_agreement"]}, tolerance {par["tolerance"]:g}.

Produced by kfp-interop {record.producer["version"]}, record schema v{record.schema_version}.
"""


RENDERERS: Registry[Callable[[InferenceMetadata], Any]] = Registry(
    "metadata format", "Add one with kfp_interop.metadata.render.RENDERERS.register(name, fn).")
RENDERERS.register("oip", to_oip)
RENDERERS.register("seldon", to_seldon)
RENDERERS.register("mlflow", to_mlflow_signature)
RENDERERS.register("triton", to_triton_config)
RENDERERS.register("kfp", to_kfp_metadata)
RENDERERS.register("markdown", to_model_card)


def render(record: InferenceMetadata, fmt: str) -> Any:
    """Render ``record`` as ``fmt`` (one of :data:`RENDERERS`)."""
    return RENDERERS.get(fmt)(record)
