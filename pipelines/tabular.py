"""The ``tabular`` reference pipeline: train -> ONNX (parity gate) -> metadata record ->
serve -> smoke test. It only composes components; the logic lives in the library."""

from kfp import dsl

from kfp_interop.components import (attach_metadata, deploy, export_onnx, load_data,
                                    smoke_test, train)


@dsl.pipeline(
    name="tabular",
    description="Train a scikit-learn, XGBoost or LightGBM model, export it to ONNX with a "
                "parity gate, attach the kfp-interop inference-metadata record, serve it "
                "on an Open Inference Protocol endpoint and smoke-test the endpoint.",
)
def tabular(
    dataset: str = "iris",
    target_column: str = "",
    task: str = "auto",
    framework: str = "sklearn",
    estimator: str = "random_forest",
    hyperparameters: str = "{}",
    scaler: bool = False,
    nan_policy: str = "error",
    test_size: float = 0.25,
    seed: int = 42,
    opset: int = 17,
    parity_tolerance: float = 1e-4,
    model_name: str = "",
    model_version: str = "1",
    deploy_target: str = "local",
    smoke_rows: int = 20,
):
    data = load_data(dataset=dataset, target_column=target_column, task=task,
                     test_size=test_size, seed=seed, nan_policy=nan_policy)
    data.set_display_name("load data")
    trained = train(train_data=data.outputs["train_data"], test_data=data.outputs["test_data"],
                    framework=framework, estimator=estimator,
                    hyperparameters=hyperparameters, seed=seed, scaler=scaler)
    exported = export_onnx(model=trained.outputs["model"], test_data=data.outputs["test_data"],
                           opset=opset, parity_tolerance=parity_tolerance)
    attached = attach_metadata(onnx_model=exported.outputs["onnx_model"],
                               model_name=model_name, model_version=model_version)
    deployed = deploy(model=attached.outputs["model"], target=deploy_target,
                      name=model_name)
    smoke_test(deployment=deployed.outputs["deployment"], model=attached.outputs["model"],
               test_data=data.outputs["test_data"], rows=smoke_rows,
               tolerance=parity_tolerance)
