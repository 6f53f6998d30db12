"""Adlik's model-compiler request (see :mod:`..render.adlik`) into a record. Checked
against Adlik's schema first. A request written by ``metadata render --format adlik``
carries the tensors and facts under ``kfp_interop``; one written by hand names the
tensors only (Adlik's request does not type the outputs), so it needs the ONNX model it
describes (``--onnx``), whose graph gives the types and must have those names."""

from __future__ import annotations

from kfp_interop.errors import MetadataError
from kfp_interop.metadata.importers.base import IMPORTERS, Described, read_json, tensor

__all__ = ["from_adlik"]


def from_adlik(text: str, path: str) -> Described:
    import jsonschema

    from kfp_interop.metadata.render.adlik import adlik_schema

    doc = read_json(text, path, "Adlik")
    try:
        jsonschema.Draft4Validator(adlik_schema()).validate(doc)
    except jsonschema.ValidationError as e:
        raise MetadataError(f"{path!r} is not an Adlik model-compiler request: "
                            f"{e.message} (at {'/'.join(map(str, e.absolute_path)) or 'top'}).") \
            from e
    if doc["serving_type"] != "onnx":
        raise MetadataError(f"{path!r} asks Adlik for serving type {doc['serving_type']!r}; "
                            "a record describes an ONNX model (serving_type onnx).")
    ours = doc.get("kfp_interop")
    if isinstance(ours, dict):
        def tensors(kind):
            items = ours.get(kind)
            if not isinstance(items, list):
                raise MetadataError(f"{path!r}: kfp_interop.{kind} is not a list.")
            return [tensor(t.get("name"), t.get("datatype"), t.get("shape"), path=path,
                           where=kind[:-1]) if isinstance(t, dict) else
                    tensor(None, None, None, path=path, where=kind[:-1]) for t in items]

        inputs, outputs = tensors("inputs"), tensors("outputs")
        named = ([t["name"] for t in inputs], [t["name"] for t in outputs])
        if named != (doc.get("input_names", named[0]), doc.get("output_names", named[1])):
            raise MetadataError(f"{path!r}: input_names/output_names {doc.get('input_names')}"
                                f"/{doc.get('output_names')} differ from the tensors under "
                                f"kfp_interop {named}: the request was edited by hand.")
        props = ours.get("properties") or {}
        return Described(inputs=inputs, outputs=outputs, name=doc["model_name"],
                         version=str(doc.get("version") or "") or None,
                         properties={str(k): str(v) for k, v in props.items()},
                         class_labels=ours.get("class_labels"), platform="onnxruntime_onnx")
    names = (doc.get("input_names"), doc.get("output_names"))
    if not names[0] or not names[1]:
        raise MetadataError(f"{path!r} names no input_names/output_names: kfp-interop reads "
                            "Adlik requests that name the model's tensors.")
    return Described(inputs=[{"name": n} for n in names[0]],
                     outputs=[{"name": n} for n in names[1]], name=doc["model_name"],
                     version=str(doc.get("version") or "") or None,
                     platform="onnxruntime_onnx", names_only=True)


IMPORTERS.register("adlik", from_adlik)
