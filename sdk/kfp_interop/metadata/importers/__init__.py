"""Other systems' metadata into a record: one module per dialect (the OIP model-metadata
response, Seldon metadata, an MLflow ``MLmodel`` signature, a Triton ``config.pbtxt``) in
the :data:`IMPORTERS` registry, the inverse of :mod:`kfp_interop.metadata.render`.

Example:
    >>> record = import_metadata("config.pbtxt", "triton", onnx_path="model.onnx")

Add a dialect with one module that calls ``IMPORTERS.register(name, fn)`` and one
import line below.
"""

from __future__ import annotations

from typing import Any

from kfp_interop.metadata.importers.base import IMPORTERS, Described, to_record
from kfp_interop.metadata.importers.base import read_document
from kfp_interop.metadata.importers import adlik, mlflow, oip, seldon, triton  # noqa: F401,E402
from kfp_interop.metadata.record import InferenceMetadata

__all__ = ["IMPORTERS", "Described", "import_metadata", "to_record"]


def import_metadata(path: str, dialect: str, *, onnx_model: Any = None, name: str = "",
                    version: str = "", task: str = "", labels: list[str] | None = None
                    ) -> InferenceMetadata:
    """Read ``path`` as ``dialect`` into a record (of the ONNX model it describes, when
    given: its graph must match the document).

    Raises:
        UnknownNameError: unknown dialect (the message lists them).
        ModelFileError: the file is missing or not text.
        MetadataError: the file is not that dialect, or does not fit the model.
        MetadataValidationError: what it says does not make a valid record.
    """
    importer = IMPORTERS.get(dialect)
    described = importer(read_document(path), path)
    return to_record(described, dialect=dialect, path=path, onnx_model=onnx_model,
                     name=name, version=version, task=task, labels=labels)
