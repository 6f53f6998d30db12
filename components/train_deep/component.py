"""train_deep: a PyTorch or Keras 3 classifier, seeded and deterministic."""

from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from kfp_interop.components._common import COMPONENT_OPTIONS, choices


@dsl.component(**COMPONENT_OPTIONS)
@choices
def train_deep(
    train_data: Input[Dataset],
    test_data: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    framework: str = "torch",
    architecture: str = "mlp",
    init_args: str = "{}",
    epochs: int = 30,
    batch_size: int = 32,
    lr: float = 0.001,
    optimizer: str = "adam",
    seed: int = 42,
    keras_backend: str = "torch",
) -> str:
    """Train; per-epoch loss and accuracy are logged as metrics.

    Args:
        framework: {deep_frameworks}.
        architecture: mlp, cnn (8x8 images as 64 features) or, for torch, 'module:Class'.
        init_args: JSON constructor arguments for a 'module:Class' model.
        epochs: passes over the training rows.
        batch_size: rows per training step.
        lr: learning rate.
        optimizer: adam, adamw or sgd.
        seed: seeds weights and data order.
        keras_backend: torch (default, no TensorFlow needed) or tensorflow.
    """
    from kfp_interop.steps import train_deep_step
    from kfp_interop.steps.artifacts import epoch_logger, log_training

    meta, cm = train_deep_step(train_path=train_data.path, test_path=test_data.path,
                               framework=framework, architecture=architecture,
                               init_args=init_args, epochs=epochs, batch_size=batch_size, lr=lr,
                               optimizer=optimizer, seed=seed, backend=keras_backend,
                               model_dir=model.path, on_epoch=epoch_logger(metrics))
    log_training(model, metrics, classification_metrics, meta, cm)
    return meta.native_sha256
