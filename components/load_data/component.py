"""load_data: a bundled data set or a CSV/Parquet file -> seeded train/test splits."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from kfp_interop.components._common import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def load_data(
    dataset: str,
    train_data: Output[Dataset],
    test_data: Output[Dataset],
    target_column: str = "",
    task: str = "auto",
    test_size: float = 0.25,
    seed: int = 42,
    nan_policy: str = "error",
    source_fingerprint: str = "",
    engine: str = "local",
    dask_scheduler: str = "",
    dask_workers: int = 0,
    dask_cluster: str = "",
    dask_worker_cpu: str = "",
    dask_worker_memory: str = "",
):
    """Load, check and split a tabular data set (Parquet outputs; schema in metadata).

    Args:
        dataset: iris, wine, breast_cancer, digits, diabetes, or a .csv/.parquet path
            or s3://bucket/key URI.
        target_column: the target column of a file (ignored for bundled sets).
        task: classification, regression or auto.
        test_size: fraction of rows held out (stratified for classification).
        seed: split seed.
        nan_policy: error (refuse NaNs) or impute (median imputer inside the model).
        source_fingerprint: fingerprint_data's output; the data set must still match it
            (so KFP's cache, keyed by parameters, follows the content, not the path).
        engine: local (load the table, split it) or dask (a file, folder or s3:// prefix
            split on its partitions on a Dask cluster; test_data is a sample of at most
            100,000 held-out rows, train_data the plan train follows).
        dask_scheduler: engine=dask: an existing scheduler's address (tcp://HOST:8786);
            empty: a LocalCluster inside the task.
        dask_workers: engine=dask: LocalCluster worker processes (0: one per CPU), or
            the operator's worker pods (0: 2).
        dask_cluster: engine=dask: operator makes the task create a DaskCluster through
            the Dask Kubernetes operator, and delete it after, whatever happens.
        dask_worker_cpu: dask_cluster=operator: CPU of each worker pod ('' = 1).
        dask_worker_memory: dask_cluster=operator: memory of each worker pod ('' = 4Gi).
    """
    from kfp_interop.steps import load_data_step

    meta = load_data_step(dataset=dataset, target_column=target_column, task=task,
                          test_size=test_size, seed=seed, nan_policy=nan_policy,
                          source_fingerprint=source_fingerprint, engine=engine,
                          dask_scheduler=dask_scheduler, dask_workers=dask_workers,
                          dask_cluster=dask_cluster, dask_worker_cpu=dask_worker_cpu,
                          dask_worker_memory=dask_worker_memory,
                          train_path=train_data.path, test_path=test_data.path)
    train_data.metadata.update(meta, split="train", format="parquet")
    test_data.metadata.update(meta, split="test", format="parquet")
