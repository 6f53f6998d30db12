"""The ``deep`` reference pipeline: a PyTorch or Keras classifier on the 8x8 digits ->
ONNX (parity gate) -> metadata record -> store, register, deploy, smoke test, promote."""

from kfp_interop.components import train_deep
from kfp_interop.pipelines.common import (export_and_serve, heavy, load_data_by_content,
                                         reference_pipeline)


@reference_pipeline(
    name="deep",
    description="Train a PyTorch or Keras 3 network (MLP or CNN) on the digits, export it "
                "to ONNX with a dynamic batch and a parity gate, attach the metadata "
                "record, serve it and smoke-test it.",
)
def deep(
    dataset: str = "digits",
    framework: str = "torch",
    architecture: str = "cnn",
    init_args: str = "{}",
    epochs: int = 15,
    batch_size: int = 32,
    lr: float = 0.001,
    optimizer: str = "adam",
    keras_backend: str = "torch",
    test_size: float = 0.25,
    seed: int = 42,
    *,
    serving,
):
    """Train a network classifier and take it to a smoke-tested endpoint.

    Args:
        dataset: a classification data set (the 8x8 digits for the cnn).
        framework: torch or keras.
        architecture: mlp, cnn, or (torch) an allowed module:Class nn.Module.
        init_args: JSON constructor arguments of a module:Class architecture.
        epochs: training epochs.
        batch_size: mini-batch size.
        lr: learning rate.
        optimizer: adam, adamw or sgd (torch).
        keras_backend: the Keras backend (torch, or tensorflow when installed).
        test_size: fraction of rows held out for metrics, parity and the smoke test.
        seed: seed of the split, the initial weights and the training order.
    """
    data = load_data_by_content(dataset, after=serving["check"], test_size=test_size,
                                seed=seed)
    trained = heavy(train_deep(train_data=data.outputs["train_data"],
                               test_data=data.outputs["test_data"], framework=framework,
                               architecture=architecture, init_args=init_args, epochs=epochs,
                               batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed,
                               keras_backend=keras_backend))
    export_and_serve(trained, data.outputs["test_data"], serving)
