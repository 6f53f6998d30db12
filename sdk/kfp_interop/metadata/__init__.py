"""The inference-metadata record and its dialects.

* :mod:`~kfp_interop.metadata.record` — the record class, its JSON Schema, building one
  from an ONNX graph;
* :mod:`~kfp_interop.metadata.embedded` — the record inside the ONNX file and beside it;
* :mod:`~kfp_interop.metadata.render` — one renderer module per dialect (OIP, Seldon,
  MLflow, Triton, KFP, model card), in the ``RENDERERS`` registry.

Example:
    >>> record = load_metadata("model.onnx")
    >>> record.model["name"], record.inputs[0]["shape"]
    ('iris', [-1, 4])
"""

from kfp_interop.metadata.embedded import (SIDECAR_SUFFIX, embed_metadata, embedded_record,
                                           load_metadata, save_metadata, sidecar_path,
                                           verify_onnx_sha256)
from kfp_interop.metadata.record import (METADATA_KEY, SCHEMA_VERSION, InferenceMetadata,
                                         build_record, onnx_content_sha256, schema,
                                         validate_record)

__all__ = ["SCHEMA_VERSION", "METADATA_KEY", "SIDECAR_SUFFIX", "InferenceMetadata", "schema",
           "validate_record", "onnx_content_sha256", "build_record", "sidecar_path",
           "embed_metadata", "embedded_record", "save_metadata", "load_metadata",
           "verify_onnx_sha256"]
