"""import_backbone: a pretrained PyTorch or Keras model you bring, as the base of fine-tuning."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from kfp_interop.components._common import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def import_backbone(
    backbone: Input[Model],
    target_train: Input[Dataset],
    model: Output[Model],
    architecture: str = "",
    init_args: str = "{}",
) -> str:
    """Read a PyTorch state dict with the module:Class it belongs to, or a Keras 3
    .keras file (safe mode; its last layer a Dense head), as data, into the model folder
    fine-tuning starts from (the file, or a folder holding one). Returns its sha256 (the
    fine-tuned model's lineage names it).

    Args:
        architecture: a state dict's nn.Module as module:Class (its module allowed by
            KFP_INTEROP_ALLOWED_MODULES), with backbone and head submodules; or mlp/cnn.
            Empty for a Keras file.
        init_args: JSON constructor arguments of that class.
    """
    from kfp_interop.steps import import_backbone_step

    meta = import_backbone_step(model_path=backbone.path, train_path=target_train.path,
                                architecture=architecture, init_args=init_args,
                                model_dir=model.path)
    model.metadata.update(meta.artifact_metadata())
    return meta.native_sha256
