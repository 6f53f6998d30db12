"""finetune: adapt a pretrained PyTorch or Keras model to a new task."""

from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from kfp_interop.components._common import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def finetune(
    base_model: Input[Model],
    train_data: Input[Dataset],
    test_data: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    epochs: int = 30,
    unfreeze_epochs: int = 0,
    batch_size: int = 16,
    lr: float = 0.001,
    unfreeze_lr: float = 0.0001,
    seed: int = 42,
) -> str:
    """Fine-tune a PyTorch or Keras base model. New classes: a new head on the frozen
    backbone for `epochs`, then optionally everything unfrozen for `unfreeze_epochs` at
    `unfreeze_lr`; the base model's own classes (a shifted target): the head is kept and
    every layer trains for `epochs`. The model's lineage (base sha256, source task) goes
    into its metadata and later into the inference-metadata record.

    Args:
        epochs: epochs of the first phase (the new head on the frozen backbone, or every
            layer for a shifted target).
        unfreeze_epochs: epochs with every layer unfrozen after the first phase (0: none).
        batch_size: rows per training step.
        lr: learning rate of the first phase.
        unfreeze_lr: learning rate once every layer is unfrozen (lower, to keep what the
            backbone learned).
        seed: seeds the new head's weights and the data order.
    """
    from kfp_interop.steps import finetune_step
    from kfp_interop.steps.artifacts import epoch_logger, log_training

    meta, cm = finetune_step(base_model_dir=base_model.path, train_path=train_data.path,
                             test_path=test_data.path, epochs=epochs,
                             unfreeze_epochs=unfreeze_epochs, batch_size=batch_size, lr=lr,
                             unfreeze_lr=unfreeze_lr, seed=seed, model_dir=model.path,
                             on_epoch=epoch_logger(metrics, ("loss", "val_accuracy")))
    log_training(model, metrics, classification_metrics, meta, cm)
    return meta.native_sha256
