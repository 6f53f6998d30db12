"""The tail every reference pipeline shares: store, register, deploy, smoke-test,
promote. A plain function called inside a pipeline body, so each pipeline stays a list
of steps."""

from kfp import kubernetes

from kfp_interop.components import (deploy, promote, register_model, smoke_test,
                                    upload_model)

# S3 credentials reach the tasks that need them as environment variables from this
# Secret (manifests/s3-secret.yaml), never as parameters. Optional: local runs and
# clusters without S3 work without it.
S3_SECRET = "kfp-interop-s3"
S3_ENV = {key: key for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "S3_ENDPOINT",
                               "S3_USE_HTTPS", "AWS_REGION")}


def store_deploy_verify(model, test_data, *, model_name, storage_uri, register,
                        tracking_uri, deploy_target, namespace, canary_percent, dry_run,
                        smoke_rows, tolerance):
    """upload_model -> register_model -> deploy -> smoke_test -> promote."""
    stored = upload_model(model=model, storage_uri=storage_uri, name=model_name,
                          dry_run=dry_run)
    kubernetes.use_secret_as_env(stored, S3_SECRET, S3_ENV, optional=True)
    registered = register_model(model=model, register=register, tracking_uri=tracking_uri,
                                name=model_name)
    deployed = deploy(model=model, target=deploy_target, name=model_name, namespace=namespace,
                      storage_uri=stored.outputs["Output"], canary_percent=canary_percent,
                      dry_run=dry_run)
    smoked = smoke_test(deployment=deployed.outputs["deployment"], model=model,
                        test_data=test_data, rows=smoke_rows, tolerance=tolerance)
    promote(deployment=deployed.outputs["deployment"],
            registration=registered.outputs["registration"],
            tracking_uri=tracking_uri).after(smoked)
    return deployed
