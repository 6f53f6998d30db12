"""The ``tabular`` reference pipeline: train -> ONNX (parity gate) -> metadata record ->
store and register -> deploy -> smoke test -> promote. It only composes components; the
logic lives in the library."""

from kfp import dsl

from kfp_interop.components import attach_metadata, export_onnx, load_data, train
from kfp_interop.pipelines._serving import store_deploy_verify


@dsl.pipeline(
    name="tabular",
    description="Train a scikit-learn, XGBoost or LightGBM model, export it to ONNX with a "
                "parity gate, attach the kfp-interop inference-metadata record, store and "
                "register it, serve it (local, KServe or Seldon), smoke-test the endpoint "
                "and promote it.",
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
    storage_uri: str = "",
    register: bool = True,
    tracking_uri: str = "",
    deploy_target: str = "local",
    namespace: str = "default",
    canary_percent: int = 0,
    dry_run: bool = False,
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
    store_deploy_verify(attached.outputs["model"], data.outputs["test_data"],
                        model_name=model_name, storage_uri=storage_uri, register=register,
                        tracking_uri=tracking_uri, deploy_target=deploy_target,
                        namespace=namespace, canary_percent=canary_percent, dry_run=dry_run,
                        smoke_rows=smoke_rows, tolerance=parity_tolerance)
