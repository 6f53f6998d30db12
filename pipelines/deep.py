"""The ``deep`` reference pipeline: a PyTorch or Keras classifier on the 8x8 digits ->
ONNX (parity gate) -> metadata record -> store, register, deploy, smoke test, promote."""

from kfp_interop.components import train_deep
from kfp_interop.pipelines.common import (export_and_serve, load_data_by_content,
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
    data = load_data_by_content(dataset, test_size=test_size, seed=seed)
    trained = train_deep(train_data=data.outputs["train_data"],
                         test_data=data.outputs["test_data"], framework=framework,
                         architecture=architecture, init_args=init_args, epochs=epochs,
                         batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed,
                         keras_backend=keras_backend)
    export_and_serve(trained, data.outputs["test_data"], serving)
