"""A Markdown model card (what the Kubeflow UI shows for a Markdown artifact)."""

from __future__ import annotations

import json

from kfp_interop.metadata.record import InferenceMetadata
from kfp_interop.metadata.render.base import RENDERERS

__all__ = ["to_model_card"]


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


RENDERERS.register("markdown", to_model_card)
