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
    host: str = "127.0.0.1",
    port: int = 0,
) -> str:
    """Deploy and wait until the endpoint is ready; returns the endpoint URL.

    target=local starts a detached Open Inference Protocol server on this machine (for
    kfp.local runs); it keeps running after the task ends, until stopped
    (kfp-interop run stops it unless --keep-serving).

    Args:
        target: deploy target (local).
        name: served model name ('' = the record's name).
        host, port: where the local server listens (port 0 = a free port).
    """
    import json
    import os

    from kfp_interop.deploy import deploy as deploy_model

    os.makedirs(deployment.path, exist_ok=True)
    info = deploy_model(target, model.path, name=name, host=host, port=port,
                        log_path=os.path.join(deployment.path, "server.log"))
    with open(os.path.join(deployment.path, "deployment.json"), "w") as f:
        json.dump(info, f, indent=2)
    deployment.metadata.update(info)
    return info["endpoint"]
