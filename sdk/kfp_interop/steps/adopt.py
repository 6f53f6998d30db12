"""The adopt stage: an ONNX file made elsewhere becomes a model folder like ours (the
file with its record embedded, the record beside it, and the sample it was run on, which
the smoke test sends). And another system's metadata becomes a record (of an ONNX file,
embedded, when one is given)."""

from __future__ import annotations

import os

from kfp_interop.constants import DEFAULT_TOLERANCE, ONNX_FILENAME
from kfp_interop.steps.stage import stage

__all__ = ["adopt_onnx_step", "import_metadata_step"]


@stage("out_dir")
def adopt_onnx_step(*, model_path: str, name: str = "", version: str = "1", task: str = "auto",
               labels: str = "", sample_path: str = "", expected_path: str = "",
               tolerance: float = DEFAULT_TOLERANCE, dynamic_batch: bool = False,
               out_dir: str):
    """Adopt ``model_path`` (an ONNX file, a folder holding ``model.onnx``, or the URI
    of an ONNX object: ``https://host/model.onnx#sha256=...``, ``s3://``, ``gs://``, ...)
    into ``out_dir``; the sample and expected outputs may be URIs too. See
    :func:`kfp_interop.export.adopt_onnx`.

    Returns:
        The record.
    """
    from kfp_interop.export.adopt import SAMPLE_FILE, adopt_onnx, save_tensors
    from kfp_interop.metadata import save_metadata
    from kfp_interop.onnx_model import find_onnx
    from kfp_interop.storage.objects import local_files

    rows = (".npz", ".npy", ".csv", ".parquet")
    with local_files(model=(model_path, "model", (".onnx",)),
                     sample=(sample_path, "sample", rows),
                     expected=(expected_path, "expected outputs", rows)) as local:
        result = adopt_onnx(find_onnx(local["model"]), name=name, version=version,
                            task=task, labels=labels or None,
                            sample=local["sample"] or None,
                            expected=local["expected"] or None, tolerance=tolerance,
                            dynamic_batch=dynamic_batch)
    record = _from_uri(result.record, model_path)
    os.makedirs(out_dir, exist_ok=True)
    save_tensors(os.path.join(out_dir, SAMPLE_FILE), result.sample)
    save_metadata(record, result.model, os.path.join(out_dir, ONNX_FILENAME))
    return record


def _from_uri(record, source: str):
    """The record with ``origin.source`` naming the URI it was read from (URIs never
    carry credentials: queries and user info are refused when parsed)."""
    from kfp_interop.storage.objects import is_uri

    return record.replace(origin={**record.origin, "source": source}) if is_uri(source) \
        else record


@stage("out_dir")
def import_metadata_step(*, path: str, dialect: str, onnx_path: str = "", name: str = "",
                         version: str = "", task: str = "", labels: str = "", out_dir: str):
    """Read another system's metadata (``dialect``: oip, seldon, mlflow, triton) into a
    record, written to ``out_dir/model.metadata.json``; with ``onnx_path`` (the model
    it describes, checked against it), also ``out_dir/model.onnx`` with it embedded.
    Either may be the URI of an object (``https://``, ``s3://``, ``gs://``, ...).

    Returns:
        The record.
    """
    from kfp_interop.files import atomic_write_json
    from kfp_interop.metadata import save_metadata, sidecar_path
    from kfp_interop.metadata.importers import import_metadata
    from kfp_interop.onnx_model import find_onnx, read_onnx
    from kfp_interop.storage.objects import local_files

    with local_files(path=(path, f"{dialect} metadata", ()),
                     onnx=(onnx_path, "model", (".onnx",))) as local:
        model = read_onnx(find_onnx(local["onnx"])) if onnx_path else None
        record = import_metadata(local["path"], dialect, onnx_model=model, name=name,
                                 version=version, task=task,
                                 labels=[s.strip() for s in labels.split(",")
                                         if s.strip()] or None)
    record = _from_uri(record, path)
    os.makedirs(out_dir, exist_ok=True)
    target = os.path.join(out_dir, ONNX_FILENAME)
    if model is not None:
        save_metadata(record, model, target)
    else:
        atomic_write_json(sidecar_path(target), record.to_dict())
    return record
