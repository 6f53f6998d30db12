"""What every importer shares: the :data:`IMPORTERS` registry, :class:`Described` (what
a dialect's document says about a model) and :func:`to_record` (a record from it).

A document rendered from a record carries the record's key facts as a flat string map
(OIP ``properties``, Seldon ``custom``, Triton ``parameters``, the MLmodel's
``metadata``): :func:`to_record` maps those it can back onto the record's fields and
keeps the others (e.g. ``data_sha256``, ``parity_passed``, the document's ``origin``, or
another system's own keys) as they came in the record's ``properties``, which rendering
writes back. So render, import, render gives the same document. The record's ``origin``
says it was imported, from which file and dialect.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable

from kfp_interop.constants import PLATFORM, PROBABILITIES_OUTPUT, VALUE_OUTPUT
from kfp_interop.errors import InvalidInputError, MetadataError, ModelFileError
from kfp_interop.metadata.record import InferenceMetadata, build_record
from kfp_interop.naming import DNS1123_LABEL, name_from_path
from kfp_interop.registry import Registry

__all__ = ["IMPORTERS", "Importer", "Described", "to_record", "tensor", "read_json",
           "ONNX_PLATFORMS"]


@dataclasses.dataclass
class Described:
    """What a document says about a model (``None``: it does not say).

    Attributes:
        inputs, outputs: tensors as ``{"name", "datatype", "shape"}`` (OIP datatypes,
            -1 for a dynamic dimension).
        properties: the document's flat string facts.
        platform: the serving platform it names ("" when none).
    """

    inputs: list[dict]
    outputs: list[dict]
    name: str | None = None
    version: str | None = None
    properties: dict[str, str] = dataclasses.field(default_factory=dict)
    feature_names: list[str] | None = None
    class_labels: list[str] | None = None
    platform: str = ""
    serving: dict | None = None
    #: the document names its tensors but does not type them: the ONNX model it
    #: describes must be given (its graph types them, and must have those names)
    names_only: bool = False


#: reads a document's text (``path`` names it in errors)
Importer = Callable[[str, str], Described]

IMPORTERS: Registry[Importer] = Registry(
    "metadata dialect",
    "Add one with kfp_interop.metadata.importers.IMPORTERS.register(name, fn).",
    entry_point_group="kfp_interop.importers")

#: platform names that describe an ONNX model ("" when the document names none)
ONNX_PLATFORMS = ("", PLATFORM, "onnx", "onnxruntime")


def read_json(text: str, path: str, dialect: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise MetadataError(f"{path!r} is not {dialect} metadata: not JSON ({e}).") from e


def tensor(name: Any, datatype: Any, shape: Any, *, path: str, where: str) -> dict:
    """One tensor, checked: a string name, an OIP datatype, a list of integer dims."""
    from kfp_interop.dtypes import by_oip

    if not isinstance(name, str) or not name:
        raise MetadataError(f"{path!r}: {where} has no tensor name.")
    try:
        by_oip(datatype)
    except InvalidInputError as e:
        raise MetadataError(f"{path!r}: {where} {name!r}: {e}") from e
    if (not isinstance(shape, list) or
            not all(isinstance(d, int) and not isinstance(d, bool) and d >= -1
                    for d in shape)):
        raise MetadataError(f"{path!r}: {where} {name!r} has shape {shape!r}; give a list "
                            "of integer dimensions (-1 for a dynamic one).")
    return {"name": name, "datatype": datatype, "shape": list(shape)}


#: facts that map onto record fields (rendering computes them from the fields again);
#: the others stay in the record's ``properties`` as they came
MAPPED_FACTS = frozenset({"kfp_interop.schema_version", "task", "framework",
                          "framework_version", "estimator", "onnx_opset", "onnx_sha256",
                          "feature_names", "class_labels", "kfp_interop_version"})


def _json_list(value: str | None, key: str, path: str) -> list[str] | None:
    if value is None:
        return None
    try:
        items = json.loads(value)
    except json.JSONDecodeError:
        items = None
    if not isinstance(items, list):
        raise MetadataError(f"{path!r}: fact {key!r} = {value!r} is not a JSON list.")
    return [str(i) for i in items]


def _infer_task(labels: list[str] | None, outputs: list[dict]) -> str:
    if labels:
        return "classification"
    if [o["name"] for o in outputs] == [VALUE_OUTPUT]:
        return "regression"
    return "other"


def _compare(graph: list[dict], stated: list[dict], kind: str, path: str) -> None:
    if graph != stated:
        raise MetadataError(
            f"{path!r} describes {kind} {stated}, but the ONNX graph has {graph}: the "
            "document is not about this model (names, datatypes and shapes must match).")


def to_record(described: Described, *, dialect: str, path: str, onnx_model: Any = None,
              name: str = "", version: str = "", task: str = "",
              labels: list[str] | None = None) -> InferenceMetadata:
    """A record from a document (and the ONNX model it describes, when given, whose
    graph must take and return exactly the tensors the document states).

    Raises:
        MetadataError: the document names a non-ONNX platform without a model, its
            tensors differ from the model's, or its sha256 is another graph's.
        MetadataValidationError: what the document says does not make a valid record
            (e.g. a classifier without class labels).
        InvalidInputError: a name that is not a DNS-1123 label (pass ``name``).
    """
    from kfp_interop._version import __version__

    props = dict(described.properties)
    if described.names_only and onnx_model is None:
        raise MetadataError(
            f"{path!r} names tensors {[t['name'] for t in described.inputs]} -> "
            f"{[t['name'] for t in described.outputs]} but does not type them: import it with "
            "the ONNX model it describes (--onnx model.onnx).")
    if described.platform not in ONNX_PLATFORMS and onnx_model is None:
        raise MetadataError(
            f"{path!r} describes a {described.platform!r} model; a record describes an ONNX "
            "model: give the converted model with --onnx (its graph is checked against "
            "the document), or convert it first (kfp-interop export).")
    name = name or described.name or name_from_path(path)
    if not DNS1123_LABEL.match(name) or len(name) > 63:
        raise InvalidInputError(f"The model name {name!r} from {path!r} is not a DNS-1123 "
                                "label (what KServe, Seldon and Triton all accept): pass "
                                "--name, e.g. " f"{name_from_path(name)!r}.")
    class_labels = (labels or described.class_labels
                    or _json_list(props.get("class_labels"), "class_labels", path))
    feature_names = (described.feature_names
                     or _json_list(props.get("feature_names"), "feature_names", path))
    task = task or props.get("task") or _infer_task(class_labels, described.outputs)
    framework = {"name": props.get("framework") or "unknown",
                 "version": props.get("framework_version") or "unknown",
                 "estimator": props.get("estimator") or "unknown"}
    origin = {"kind": "imported", "source": os.path.basename(path), "format": dialect}
    version = str(version or described.version or "1")
    kept = {k: v for k, v in props.items() if k not in MAPPED_FACTS}
    optional = {"feature_names": feature_names, "class_labels": class_labels,
                "properties": kept or None, "serving": described.serving}
    if onnx_model is not None:
        from kfp_interop.onnx_model import tensor_specs

        inputs, outputs = tensor_specs(onnx_model)
        if described.names_only:
            for graph, stated, kind in ((inputs, described.inputs, "inputs"),
                                        (outputs, described.outputs, "outputs")):
                if [t["name"] for t in graph] != [t["name"] for t in stated]:
                    raise MetadataError(
                        f"{path!r} names {kind} {[t['name'] for t in stated]}, but the ONNX "
                        f"graph has {[t['name'] for t in graph]}: the document is not about "
                        "this model.")
        else:
            _compare(inputs, described.inputs, "inputs", path)
            _compare(outputs, described.outputs, "outputs", path)
        record = build_record(onnx_model, name=name, version=version, task=task,
                              framework=framework, feature_names=feature_names,
                              class_labels=class_labels, origin=origin)
        stated_sha = props.get("onnx_sha256")
        if stated_sha and stated_sha != record.model["onnx_sha256"]:
            raise MetadataError(f"{path!r} gives onnx_sha256 {stated_sha}, the model's graph "
                                f"is {record.model['onnx_sha256']}: it describes another "
                                "version of the model.")
        data = record.to_dict()
        data.update({k: v for k, v in optional.items() if v is not None})
        return InferenceMetadata.from_dict(data)
    model: dict[str, Any] = {"name": name, "version": version, "platform": PLATFORM,
                             "task": task}
    if props.get("onnx_opset", "").isdigit():
        model["onnx_opset"] = int(props["onnx_opset"])
    if props.get("onnx_sha256"):
        model["onnx_sha256"] = props["onnx_sha256"]
    producer = {"name": "kfp-interop",
                "version": props.get("kfp_interop_version") or __version__}
    return InferenceMetadata(model=model, origin=origin, framework=framework,
                             inputs=described.inputs, outputs=described.outputs,
                             producer=producer,
                             **{k: v for k, v in optional.items() if v is not None})


def read_document(path: str, limit: int = 16 * 1024 * 1024) -> str:
    """A metadata file's text (UTF-8, at most ``limit`` bytes).

    Raises:
        ModelFileError: missing, too large or not UTF-8.
    """
    if not os.path.isfile(path):
        raise ModelFileError(f"Metadata file {path!r} does not exist.")
    if os.path.getsize(path) > limit:
        raise ModelFileError(f"Metadata file {path!r} is larger than {limit} bytes.")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise ModelFileError(f"Metadata file {path!r} is not UTF-8 text: {e}") from e


def probabilities_labels(outputs: list[dict], names_of: Callable[[dict], Any]
                         ) -> list[str] | None:
    """Class labels a document gives as the column names of ``probabilities``."""
    for o in outputs:
        if o["name"] == PROBABILITIES_OUTPUT:
            names = names_of(o)
            return [str(n) for n in names] if names else None
    return None
