"""Render the inference-metadata record into each dialect the ecosystem speaks.

One module per dialect, each registering its renderer in :data:`RENDERERS`:

=========  ==========================================================================
format     what it produces
=========  ==========================================================================
oip        Open Inference Protocol (KServe V2) model-metadata response (a dict)
seldon     Seldon Core v1 model metadata: ``messagetype``/``schema`` tensors + ``custom``
mlflow     MLflow ``ModelSignature.to_dict()`` form (tensor-based)
triton     Triton ``config.pbtxt`` text, platform ``onnxruntime_onnx``
kfp        KFP artifact ``metadata`` dict (what the Kubeflow UI shows on a Model)
markdown   a model card (Markdown)
adlik      Adlik's model-compiler request (JSON), valid against Adlik's schema
acumos     Acumos onboarding files: ``metadata.json`` (schema 0.6.0) + ``model.proto``
=========  ==========================================================================

None of these imports its ecosystem's library: they are plain data, tested against
the real schemas (OIP JSON Schema, Triton's ModelConfig proto, MLflow's signature class).
Add a dialect with one module that calls ``RENDERERS.register(name, fn)`` and one import
line below (see ``docs/extending.md``).
"""

from __future__ import annotations

from typing import Any

from kfp_interop.metadata.record import InferenceMetadata
from kfp_interop.metadata.render.base import RENDERERS, Files, properties
# built-in dialects: importing a module registers its renderer
from kfp_interop.metadata.render import (acumos, adlik, kfp_artifact,  # noqa: F401
                                         mlflow, model_card, oip, seldon, triton)
from kfp_interop.metadata.render.kfp_artifact import to_kfp_metadata
from kfp_interop.metadata.render.mlflow import to_mlflow_signature
from kfp_interop.metadata.render.model_card import to_model_card
from kfp_interop.metadata.render.oip import to_oip
from kfp_interop.metadata.render.seldon import to_seldon
from kfp_interop.metadata.render.triton import to_triton_config

__all__ = ["RENDERERS", "render", "properties", "Files", "to_oip", "to_seldon", "to_mlflow_signature",
           "to_triton_config", "to_kfp_metadata", "to_model_card"]


def render(record: InferenceMetadata, fmt: str) -> Any:
    """Render ``record`` as ``fmt`` (one of :data:`RENDERERS`)."""
    return RENDERERS.get(fmt)(record)
