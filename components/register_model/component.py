"""register_model: log and register the model in MLflow under an alias."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from kfp_interop.components._common import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def register_model(
    model: Input[Model],
    registration: Output[Artifact],
    register: bool = True,
    tracking_uri: str = "",
    name: str = "",
    alias: str = "candidate",
):
    """Log the ONNX model with its record-derived signature, register a version and point
    the alias at it (all or nothing).

    Args:
        register: False skips the step.
        tracking_uri: MLflow tracking URI ('' = $MLFLOW_TRACKING_URI, else a local SQLite file).
        name: registered model name ('' = the record's name).
        alias: alias set on the new version.
    """
    from kfp_interop.steps import register_model_step

    registration.metadata.update(register_model_step(model_dir=model.path, register=register,
                                               tracking_uri=tracking_uri, name=name,
                                               alias=alias, out_dir=registration.path))
