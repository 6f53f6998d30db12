"""promote: after a passing smoke test, give the canary all traffic and move the
registry alias to champion."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Output

from kfp_interop.components._common import COMPONENT_OPTIONS


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
    from kfp_interop.steps import promote_step

    promotion.metadata.update(promote_step(deployment_dir=deployment.path,
                                           registration=dict(registration.metadata),
                                           tracking_uri=tracking_uri, to_alias=to_alias,
                                           out_dir=promotion.path))
