"""A Markdown model card (what the Kubeflow UI shows for a Markdown artifact)."""

from __future__ import annotations

import json

from kfp_interop.metadata.record import InferenceMetadata
from kfp_interop.metadata.render.base import RENDERERS

__all__ = ["to_model_card"]

_ORIGINS = {"trained": "trained by a kfp-interop pipeline",
            "exported": "trained elsewhere, converted to ONNX and checked by kfp-interop",
            "adopted": "an ONNX file made elsewhere, checked and described by kfp-interop",
            "imported": "described from another system's metadata"}


def _rows(items) -> str:
    return "\n".join(f"| {k} | {v} |" for k, v in items if v is not None)


def _tensors(tensors: list[dict]) -> str:
    return "\n".join(f"| `{t['name']}` | {t['datatype']} | {t['shape']} |" for t in tensors)


def to_model_card(record: InferenceMetadata) -> str:
    """A Markdown model card: what the model takes and returns, where it came from, how
    it was checked; sections the record has nothing for are left out."""
    m, fw, tr, par = record.model, record.framework, record.training, record.parity
    origin = record.origin
    labels = ", ".join(record.class_labels) if record.class_labels else None
    producer = origin.get("onnx_producer") or {}
    head = [("task", m["task"]), ("origin", _ORIGINS[origin["kind"]]),
            ("source", origin.get("source")),
            ("framework", f"{fw['name']} {fw['version']} ({fw['estimator']})"),
            ("ONNX producer", f"{producer.get('name')} {producer.get('version', '')}".strip()
             if producer else None),
            ("platform", m["platform"]), ("ONNX opset", m.get("onnx_opset")),
            ("ONNX sha256", f"`{m['onnx_sha256']}`" if m.get("onnx_sha256") else None),
            ("classes", labels)]
    if tr:
        head += [("data set", tr["dataset"]), ("data sha256", f"`{tr['data_sha256']}`"),
                 ("rows", tr["rows"]), ("seed", tr["seed"]),
                 ("hyperparameters", f"`{json.dumps(tr['hyperparameters'], sort_keys=True)}`")]
    parts = [f"# Model card: {m['name']} v{m['version']}\n\n| field | value |\n|---|---|\n"
             + _rows(head),
             "## Inputs\n| name | datatype | shape |\n|---|---|---|\n" + _tensors(record.inputs)]
    if record.feature_names:
        parts.append("Features, in order: "
                     + ", ".join(f"`{f}`" for f in record.feature_names))
    parts.append("## Outputs\n| name | datatype | shape |\n|---|---|---|\n"
                 + _tensors(record.outputs))
    if tr:
        parts.append("## Held-out metrics\n| metric | value |\n|---|---|\n" + "\n".join(
            f"| {k} | {v:.4f} |" for k, v in sorted(tr["metrics"].items())))
    if par:
        against = ("native vs ONNX Runtime" if origin["kind"] in ("trained", "exported")
                   else "ONNX Runtime vs the expected outputs given")
        parts.append(f"## Parity ({against})\n"
                     f"{'passed' if par['passed'] else 'FAILED'} on {par['n_rows']} rows: max "
                     f"abs diff {par['max_abs_diff']:.3g}, label agreement "
                     f"{par['label_agreement']}, tolerance {par['tolerance']:g}"
                     + (f", on {par['provider']}" if par.get("provider") else "") + ".")
    if record.lineage:
        lin = record.lineage
        source = lin.get("source_task") or {}
        parts.append("## Lineage\n| field | value |\n|---|---|\n" + _rows([
            ("method", lin.get("method")),
            ("base model sha256", f"`{lin['base_model_sha256']}`"
             if lin.get("base_model_sha256") else None),
            ("base framework", lin.get("base_framework")),
            ("source data set", source.get("dataset")),
            ("source classes", ", ".join(map(str, source["classes"]))
             if source.get("classes") else None),
            ("source data sha256", f"`{source['data_sha256']}`"
             if source.get("data_sha256") else None),
            ("source accuracy", f"{source['accuracy']:.4f}"
             if isinstance(source.get("accuracy"), (int, float)) else None)]))
    fed = record.federated
    if fed:
        part, dp = fed.get("partition") or {}, fed.get("dp")
        local = fed.get("local_accuracy")
        parts.append("## Federated training\n| field | value |\n|---|---|\n" + _rows([
            ("engine", "Flower Deployment Engine (rows stay with their owners)"
             if fed.get("engine") == "deployment" else "simulation (pipeline steps)"),
            ("SuperLink, run", f"{fed['superlink']}, run {fed['run_id']}"
             if fed.get("superlink") else None),
            ("rounds x clients", f"{fed['rounds']} x {fed['clients']}"),
            ("strategy", fed["strategy"] + (f" {json.dumps(fed['strategy_options'])}"
                                            if fed.get("strategy_options") else "")),
            ("local epochs per round", fed.get("local_epochs")),
            ("client samples", ", ".join(map(str, fed["client_samples"]))),
            ("partition", part.get("kind", "") + (f", alpha {part['alpha']:g}"
                                                  if part.get("alpha") is not None else "")
             if part else None),
            ("differential privacy", "none" if not dp else
             f"clip norm {dp['clip_norm']:g}, noise multiplier {dp['noise_multiplier']:g}, "
             + (f"epsilon {dp['epsilon']:.3g} at delta {dp['delta']:g} ({dp['accountant']})"
                if dp.get("epsilon") is not None else "no epsilon claimed")),
            ("centralized baseline accuracy", f"{fed['centralized_accuracy']:.4f}"
             if isinstance(fed.get("centralized_accuracy"), (int, float)) else None),
            ("each client alone, accuracy", ", ".join(f"{a:.4f}" for a in local)
             if local else None)]))
    if record.checks:
        c = record.checks
        parts.append("## Checks\n" + ", ".join(
            f"{k.replace('_', ' ')}: {v}" for k, v in sorted(c.items())) + ".")
    parts.append(f"Produced by kfp-interop {record.producer['version']}, record schema "
                 f"v{record.schema_version}.")
    return "\n\n".join(parts) + "\n"


RENDERERS.register("markdown", to_model_card)
