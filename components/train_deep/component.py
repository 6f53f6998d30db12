"""train_deep: a PyTorch or Keras 3 classifier, seeded and deterministic."""

from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from kfp_interop.components._image import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
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
):
    """Train; per-epoch loss and accuracy are logged as metrics.

    Args:
        framework: torch or keras.
        architecture: mlp, cnn (8x8 images as 64 features) or, for torch, 'module:Class'.
        init_args: JSON constructor arguments for a 'module:Class' model.
        epochs, batch_size, lr, optimizer: training settings (optimizer: adam, adamw, sgd).
        seed: seeds weights and data order.
        keras_backend: torch (default, no TensorFlow needed) or tensorflow.
    """
    import os

    os.environ.setdefault("KERAS_BACKEND", keras_backend)
    from kfp_interop.steps_deep import train_deep_step

    def log_epoch(row):
        for key in ("loss", "accuracy", "val_accuracy"):
            if key in row:
                metrics.log_metric(f"epoch_{row['epoch']:03d}_{key}", row[key])

    meta, cm = train_deep_step(train_path=train_data.path, test_path=test_data.path,
                               framework=framework, architecture=architecture,
                               init_args=init_args, epochs=epochs, batch_size=batch_size, lr=lr,
                               optimizer=optimizer, seed=seed, backend=keras_backend,
                               model_dir=model.path, on_epoch=log_epoch)
    model.metadata.update({k: v for k, v in meta.items() if k != "history"})
    for key, value in meta["metrics"].items():
        metrics.log_metric(key, value)
    classification_metrics.log_confusion_matrix(meta["class_labels"], cm)
