"""The ``tabular`` reference pipeline: train -> ONNX (parity gate) -> metadata record ->
store and register -> deploy -> smoke test -> promote. It only composes components; the
logic lives in the library."""

from kfp_interop.components import train
from kfp_interop.pipelines.common import (export_and_serve, heavy, load_data_by_content,
                                         reads_storage, reference_pipeline)


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
    engine: str = "local",
    dask_scheduler: str = "",
    dask_workers: int = 0,
    dask_cluster: str = "",
    dask_worker_cpu: str = "",
    dask_worker_memory: str = "",
    *,
    serving,
):
    """Train a tabular model and take it to a smoke-tested endpoint.

    Args:
        dataset: a bundled data set (iris, wine, breast_cancer, diabetes, digits) or a
            CSV/Parquet file (a path, or an s3://bucket/key.csv URI) with a header row.
        target_column: the label column of a file (bundled data sets know theirs).
        task: classification, regression, or auto (from the target's values).
        framework: sklearn, xgboost or lightgbm.
        estimator: the framework's estimator (sklearn: random_forest, gradient_boosting,
            logistic_regression, linear_regression, or a module:Class).
        hyperparameters: JSON object of estimator hyperparameters.
        scaler: put a StandardScaler in front (scikit-learn; exported into the graph).
        nan_policy: error, drop or impute missing values.
        test_size: fraction of rows held out for metrics, parity and the smoke test.
        seed: seed of the split and the estimator.
        engine: local (the table in the task's memory) or dask (LightGBM and XGBoost on
            a file, folder or s3:// prefix of Parquet/CSV files, split and trained on its
            partitions on a Dask cluster; docs/scale.md).
        dask_scheduler: engine=dask: the address of an existing Dask scheduler
            (tcp://HOST:8786); empty: a LocalCluster inside each task, sized to its pod.
        dask_workers: engine=dask: LocalCluster worker processes (0: one per CPU of
            the pod), or the operator's worker pods (0: 2).
        dask_cluster: engine=dask on Kubernetes: operator makes each engine task create
            a DaskCluster through the Dask Kubernetes operator (image: ours) and delete
            it after, whatever happens (RBAC: manifests/rbac.yaml).
        dask_worker_cpu: dask_cluster=operator: CPU of each worker pod ('' = 1).
        dask_worker_memory: dask_cluster=operator: memory of each worker pod ('' = 4Gi).
    """
    data = load_data_by_content(dataset, after=serving["check"], target_column=target_column,
                                task=task,
                                test_size=test_size, seed=seed, nan_policy=nan_policy,
                                engine=engine, dask_scheduler=dask_scheduler,
                                dask_workers=dask_workers, dask_cluster=dask_cluster,
                                dask_worker_cpu=dask_worker_cpu,
                                dask_worker_memory=dask_worker_memory)
    data.set_display_name("load data")
    # engine=dask: train reads the table's partitions (its LocalCluster's workers inherit
    # the storage credentials; the operator's pods get the Secrets by reference)
    trained = reads_storage(heavy(train(train_data=data.outputs["train_data"],
                          test_data=data.outputs["test_data"], framework=framework,
                          estimator=estimator, hyperparameters=hyperparameters, seed=seed,
                          scaler=scaler, engine=engine, dask_scheduler=dask_scheduler,
                          dask_workers=dask_workers, dask_cluster=dask_cluster,
                          dask_worker_cpu=dask_worker_cpu,
                          dask_worker_memory=dask_worker_memory)))
    export_and_serve(trained, data.outputs["test_data"], serving)
