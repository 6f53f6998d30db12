"""upload_model: store the model in the layout its serving runtime needs."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from kfp_interop.components._image import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def upload_model(
    model: Input[Model],
    upload: Output[Artifact],
    storage_uri: str = "",
    layout: str = "triton",
    name: str = "",
    create_bucket: bool = False,
    dry_run: bool = False,
) -> str:
    """Upload to s3://bucket/prefix (credentials from the environment: the kfp-interop-s3
    Secret on a cluster) or a local folder; returns the storage root ('' = skipped).

    Args:
        storage_uri: repository root; '' skips the upload (local serving needs none).
        layout: triton (KServe, Seldon Triton) or mlserver (MLflow model + model-settings).
        name: serving name ('' = the record's name); the folder is named after it.
        create_bucket: create a missing bucket instead of failing.
        dry_run: write nothing; return storage_uri as if uploaded.
    """
    import json
    import os

    from kfp_interop.storage import upload as upload_to

    if not storage_uri:
        upload.metadata.update(skipped=True)
        return ""
    if dry_run:
        upload.metadata.update(skipped=True, dry_run=True, storage_uri=storage_uri)
        return storage_uri
    result = upload_to(model.path, storage_uri, layout=layout, name=name,
                       create_bucket=create_bucket)
    os.makedirs(upload.path, exist_ok=True)
    with open(os.path.join(upload.path, "upload.json"), "w") as f:
        json.dump(result, f, indent=2)
    upload.metadata.update(storage_uri=storage_uri, model_uri=result["model_uri"],
                           layout=layout, objects=result["objects"],
                           uploaded=len(result["uploaded"]), skipped=len(result["skipped"]))
    return storage_uri
