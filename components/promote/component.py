"""promote: after a passing smoke test, give the canary all traffic and move the
registry alias to champion."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Output

from kfp_interop.components._image import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def promote(
    deployment: Input[Artifact],
    registration: Input[Artifact],
    promotion: Output[Artifact],
    tracking_uri: str = "",
    to_alias: str = "champion",
):
    """Promote what passed its smoke test.

    Args:
        tracking_uri: MLflow tracking URI (as for register_model).
        to_alias: alias that the registered version receives.
    """
    import json
    import os

    from kfp_interop.deploy import promote as promote_deployment
    from kfp_interop.registry_mlflow import promote as promote_alias

    with open(os.path.join(deployment.path, "deployment.json")) as f:
        info = json.load(f)
    done = {}
    if info.get("canary_percent") and not info.get("dry_run"):
        promote_deployment(info)
        done["traffic"] = 100
    reg = dict(registration.metadata)
    if reg.get("name") and not reg.get("skipped"):
        done["alias"] = to_alias
        done["version"] = promote_alias(reg["name"], from_alias=reg["alias"],
                                        to_alias=to_alias,
                                        tracking_uri=tracking_uri or reg.get("tracking_uri", ""))
    promotion.metadata.update(done or {"skipped": True})
