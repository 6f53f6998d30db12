"""The ``tabular`` reference pipeline: train -> ONNX (parity gate) -> metadata record ->
store and register -> deploy -> smoke test -> promote. It only composes components; the
logic lives in the library."""

from kfp_interop.components import train
from kfp_interop.pipelines.common import (export_and_serve, load_data_by_content,
                                         reference_pipeline)


@reference_pipeline(
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
    *,
    serving,
):
    data = load_data_by_content(dataset, target_column=target_column, task=task,
                                test_size=test_size, seed=seed, nan_policy=nan_policy)
    data.set_display_name("load data")
    trained = train(train_data=data.outputs["train_data"], test_data=data.outputs["test_data"],
                    framework=framework, estimator=estimator,
                    hyperparameters=hyperparameters, seed=seed, scaler=scaler)
    export_and_serve(trained, data.outputs["test_data"], serving)
