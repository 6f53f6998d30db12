"""The Triton model repository layout (KServe's ONNX runtime, Seldon's TRITON_SERVER):
``<name>/config.pbtxt`` rendered from the record and ``<name>/<version>/model.onnx``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from kfp_interop.constants import ONNX_FILENAME
from kfp_interop.files import atomic_write
from kfp_interop.storage.layouts.base import register_layout

if TYPE_CHECKING:  # pragma: no cover
    from kfp_interop.metadata import InferenceMetadata

__all__ = ["triton_files"]


def triton_files(record: "InferenceMetadata", onnx_path: str, workdir: str, name: str,
                 version: str) -> dict[str, str]:
    from kfp_interop.metadata.render import to_triton_config

    # the config names the folder and serves the version folder being written
    served = record if (name, version) == (record.name, record.version) else record.replace(
        model={**record.model, "name": name, "version": str(version)})
    config = atomic_write(os.path.join(workdir, "config.pbtxt"), to_triton_config(served))
    return {"config.pbtxt": config, f"{version}/{ONNX_FILENAME}": onnx_path}


register_layout("triton", triton_files)
