"""upload_model: store the model in the layout its serving runtime needs."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from kfp_interop.components._common import COMPONENT_OPTIONS, choices


@dsl.component(**COMPONENT_OPTIONS)
@choices
def upload_model(
    model: Input[Model],
    upload: Output[Artifact],
    storage_uri: str = "",
    layout: str = "triton",
    name: str = "",
    create_bucket: bool = False,
    dry_run: bool = False,
    deploy_target: str = "",
    deploy_options: str = "",
) -> str:
    """Upload to s3://bucket/prefix (credentials from the environment: the kfp-interop-s3
    Secret on a cluster) or a local folder; returns the storage root ('' = skipped).

    Args:
        storage_uri: repository root; '' skips the upload (local serving needs none).
        layout: {layouts} (triton: KServe, Seldon Triton; mlserver: MLflow model +
            model-settings); '' = the one deploy_target reads with deploy_options.
        name: serving name ('' = the record's name); the folder is named after it.
        create_bucket: create a missing bucket instead of failing.
        dry_run: write nothing; return storage_uri as if uploaded.
        deploy_target: with layout '', the target whose layout to write.
        deploy_options: with layout '', that target's options (a JSON object).
    """
    from kfp_interop.steps import upload_model_step

    root, metadata = upload_model_step(model_dir=model.path, storage_uri=storage_uri, layout=layout,
                                 name=name, create_bucket=create_bucket, dry_run=dry_run,
                                 deploy_target=deploy_target,
                                 deploy_options=deploy_options, out_dir=upload.path)
    upload.metadata.update(metadata)
    return root
