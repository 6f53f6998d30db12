"""attach_metadata: build the inference-metadata record and embed it in the ONNX file."""

from kfp import dsl
from kfp.dsl import Input, Markdown, Model, Output

from kfp_interop.components._common import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def attach_metadata(
    onnx_model: Input[Model],
    model: Output[Model],
    model_card: Output[Markdown],
    model_name: str = "",
    model_version: str = "1",
):
    """Write model.onnx with the record embedded and model.metadata.json beside it.

    The record is also the output Model's metadata (the Kubeflow UI shows it), and a
    Markdown model card is rendered from it.

    Args:
        model_name: serving name, a DNS-1123 label ('' derives one from data set and
            framework).
        model_version: a positive integer, as a string.
    """
    from kfp_interop.files import atomic_write
    from kfp_interop.metadata.render import to_kfp_metadata, to_model_card
    from kfp_interop.steps import attach_metadata_step

    record = attach_metadata_step(model_dir=onnx_model.path, model_name=model_name,
                                  model_version=model_version, out_dir=model.path)
    model.metadata.update(to_kfp_metadata(record))
    atomic_write(model_card.path, to_model_card(record))
