"""deploy: put a model with its record behind a serving endpoint."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from kfp_interop.components._image import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def deploy(
    model: Input[Model],
    deployment: Output[Artifact],
    target: str = "local",
    name: str = "",
    namespace: str = "default",
    storage_uri: str = "",
    canary_percent: int = 0,
    dry_run: bool = False,
    timeout_s: int = 600,
    endpoint: str = "",
) -> str:
    """Deploy, wait until Ready and confirm the model answers; roll back on failure.
    Returns the endpoint URL ('' for a dry run).

    Args:
        target: local, kserve, seldon or seldon-v2.
        name: served model name ('' = the record's name).
        namespace: Kubernetes namespace.
        storage_uri: where upload_model stored the model (Kubernetes targets).
        canary_percent: 0, or the share of traffic for the new version.
        dry_run: only render and validate the manifest (written to the artifact).
        timeout_s: how long to wait for Ready.
        endpoint: OIP base URL override (e.g. an ingress), else from the status.
    """
    import json
    import os

    from kfp_interop.deploy import deploy as deploy_model

    os.makedirs(deployment.path, exist_ok=True)
    options = {"name": name, "dry_run": dry_run, "output_dir": deployment.path}
    if target == "local":
        options["log_path"] = os.path.join(deployment.path, "server.log")
    else:
        options.update(namespace=namespace, storage_uri=storage_uri,
                       canary_percent=canary_percent, timeout=timeout_s, endpoint=endpoint)
    info = deploy_model(target, model.path, **options)
    with open(os.path.join(deployment.path, "deployment.json"), "w") as f:
        json.dump(info, f, indent=2)
    deployment.metadata.update({k: v for k, v in info.items()
                                if k not in ("manifest", "previous", "resource")})
    return info.get("endpoint") or ""
