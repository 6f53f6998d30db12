"""The ``deep`` reference pipeline: a PyTorch or Keras classifier on the 8x8 digits ->
ONNX (parity gate) -> metadata record -> store, register, deploy, smoke test, promote."""

from kfp import dsl

from kfp_interop.components import attach_metadata, export_onnx, load_data, train_deep
from kfp_interop.pipelines._serving import store_deploy_verify


@dsl.pipeline(
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
    opset: int = 17,
    parity_tolerance: float = 1e-4,
    model_name: str = "",
    model_version: str = "1",
    storage_uri: str = "",
    register: bool = True,
    tracking_uri: str = "",
    deploy_target: str = "local",
    namespace: str = "default",
    canary_percent: int = 0,
    dry_run: bool = False,
    smoke_rows: int = 20,
):
    data = load_data(dataset=dataset, test_size=test_size, seed=seed)
    trained = train_deep(train_data=data.outputs["train_data"],
                         test_data=data.outputs["test_data"], framework=framework,
                         architecture=architecture, init_args=init_args, epochs=epochs,
                         batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed,
                         keras_backend=keras_backend)
    exported = export_onnx(model=trained.outputs["model"], test_data=data.outputs["test_data"],
                           opset=opset, parity_tolerance=parity_tolerance)
    attached = attach_metadata(onnx_model=exported.outputs["onnx_model"],
                               model_name=model_name, model_version=model_version)
    store_deploy_verify(attached.outputs["model"], data.outputs["test_data"],
                        model_name=model_name, storage_uri=storage_uri, register=register,
                        tracking_uri=tracking_uri, deploy_target=deploy_target,
                        namespace=namespace, canary_percent=canary_percent, dry_run=dry_run,
                        smoke_rows=smoke_rows, tolerance=parity_tolerance)
