"""train: fit a tabular model (scikit-learn, XGBoost, LightGBM); log metrics."""

from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from kfp_interop.components._common import COMPONENT_OPTIONS, choices


@dsl.component(**COMPONENT_OPTIONS)
@choices
def train(
    train_data: Input[Dataset],
    test_data: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    framework: str = "sklearn",
    estimator: str = "random_forest",
    hyperparameters: str = "{}",
    seed: int = 42,
    scaler: bool = False,
    engine: str = "local",
    dask_scheduler: str = "",
    dask_workers: int = 0,
    dask_cluster: str = "",
    dask_worker_cpu: str = "",
    dask_worker_memory: str = "",
) -> str:
    """Train on train_data, score on test_data, save the model in its native safe format.

    Args:
        framework: {tabular_frameworks}.
        estimator: for sklearn one of {sklearn_estimators}, or any scikit-learn
            'module:Class'; for the others the framework's own name; '' = the
            framework's default.
        hyperparameters: a JSON object passed to the estimator.
        seed: random_state for the estimator.
        scaler: put a StandardScaler in front (scikit-learn only).
        engine: local, or dask (load_data's plan: LightGBM or XGBoost trained on the
            table's partitions through their own Dask interfaces).
        dask_scheduler: engine=dask: an existing scheduler's address; empty: a
            LocalCluster inside the task.
        dask_workers: engine=dask: LocalCluster worker processes (0: one per CPU), or
            the operator's worker pods (0: 2).
        dask_cluster: engine=dask: operator makes the task create a DaskCluster through
            the Dask Kubernetes operator, and delete it after, whatever happens.
        dask_worker_cpu: dask_cluster=operator: CPU of each worker pod ('' = 1).
        dask_worker_memory: dask_cluster=operator: memory of each worker pod ('' = 4Gi).
    """
    from kfp_interop.steps import train_step
    from kfp_interop.steps.artifacts import log_training

    meta, cm = train_step(train_path=train_data.path, test_path=test_data.path,
                          framework=framework, estimator=estimator,
                          hyperparameters=hyperparameters, seed=seed, scaler=scaler,
                          engine=engine, dask_scheduler=dask_scheduler,
                          dask_workers=dask_workers,
                          dask_cluster=dask_cluster, dask_worker_cpu=dask_worker_cpu,
                          dask_worker_memory=dask_worker_memory, model_dir=model.path)
    log_training(model, metrics, classification_metrics, meta, cm)
    return meta.native_sha256
