"""check_settings: the first task of every reference pipeline; stops a run that could
only fail at its end, naming the parameters to set."""

from kfp import dsl

from kfp_interop.components._common import COMPONENT_OPTIONS, choices


@dsl.component(**COMPONENT_OPTIONS)
@choices
def check_settings(
    deploy_target: str = "local",
    storage_uri: str = "",
    register: bool = True,
    tracking_uri: str = "",
    dry_run: bool = False,
    runtime: str = "",
    cpu: str = "",
    memory: str = "",
    gpus: int = 0,
    deploy_options: str = "",
) -> str:
    """Check the serving settings where the run runs (a cluster or this machine) before
    any work, and say what the run will do.

    Args:
        deploy_target: one of {targets}.
        storage_uri: where the model is stored (s3://bucket/prefix or a folder).
        register: whether the model is registered in MLflow.
        tracking_uri: MLflow tracking URI (empty: MLFLOW_TRACKING_URI, or a local store
            off-cluster).
        dry_run: render manifests only.
        runtime: the KServe serving runtime (kserve only).
        cpu: the model server's CPU on a cluster.
        memory: the model server's memory on a cluster.
        gpus: the model server's GPUs on a cluster.
        deploy_options: the target's other options as a JSON object.
    """
    from kfp_interop.steps import check_settings_step

    summary = check_settings_step(deploy_target=deploy_target, storage_uri=storage_uri,
                                  register=register, tracking_uri=tracking_uri,
                                  dry_run=dry_run, runtime=runtime, cpu=cpu, memory=memory,
                                  gpus=gpus, deploy_options=deploy_options)
    print(summary)
    return summary
