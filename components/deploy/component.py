"""deploy: put a model with its record behind a serving endpoint."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from kfp_interop.components._common import COMPONENT_OPTIONS, choices


@dsl.component(**COMPONENT_OPTIONS)
@choices
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
    runtime: str = "",
    cpu: str = "",
    memory: str = "",
    gpus: int = 0,
    deploy_options: str = "",
) -> str:
    """Deploy, wait until Ready and confirm the model answers; roll back on failure.
    Returns the endpoint URL ('' for a dry run).

    Args:
        target: {targets}.
        name: served model name ('' = the record's name).
        namespace: Kubernetes namespace.
        storage_uri: where upload_model stored the model (Kubernetes targets).
        canary_percent: 0, or the share of traffic for the new version.
        dry_run: only render and validate the manifest (written to the artifact).
        timeout_s: how long to wait for Ready.
        endpoint: OIP base URL override (e.g. an ingress), else from the status.
        runtime: kserve only: triton (default) or kfp-interop (the kfp-interop-onnx
            ServingRuntime in manifests/), or another ServingRuntime's name.
        cpu: the model server's CPU request and limit, e.g. 2 ('' = the target's 1).
        memory: its memory request and limit, e.g. 4Gi ('' = the target's 1Gi).
        gpus: GPUs for the model server (nvidia.com/gpu; Seldon v2: requirement gpu).
        deploy_options: the target's other options as a JSON object, e.g.
            {{"replicas": 2, "service_account": "models"}} (kfp-interop targets lists them).
    """
    from kfp_interop.steps import deploy_step

    info, metadata = deploy_step(model_dir=model.path, target=target, name=name,
                                 namespace=namespace, storage_uri=storage_uri,
                                 canary_percent=canary_percent, dry_run=dry_run,
                                 timeout_s=timeout_s, endpoint=endpoint, runtime=runtime,
                                 cpu=cpu, memory=memory, gpus=gpus,
                                 deploy_options=deploy_options, out_dir=deployment.path)
    deployment.metadata.update(metadata)
    return info.get("endpoint") or ""
