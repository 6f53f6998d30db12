"""The tabular stages: load and split a data set, train a model; and
:func:`run_tabular`, the tabular flow up to the attached model without KFP."""

from __future__ import annotations

import os
from typing import Any

from kfp_interop.constants import DEFAULT_OPSET, DEFAULT_SEED, DEFAULT_TEST_SIZE, DEFAULT_TOLERANCE
from kfp_interop.steps.model_dir import ModelMeta, write_model_meta
from kfp_interop.steps.stage import stage

__all__ = ["fingerprint_data_step", "load_data_step", "train_step", "train_dask_step",
           "run_tabular"]


@stage("out_path")
def fingerprint_data_step(*, dataset: str, out_path: str | None = None) -> str:
    """The content fingerprint of a data set (see
    :func:`kfp_interop.data.source_fingerprint`; a bundled name, a file path, or a
    storage URI such as ``s3://bucket/rows.csv``), also written as JSON to ``out_path``."""
    from kfp_interop.data import source_fingerprint
    from kfp_interop.files import atomic_write_json
    from kfp_interop.steps.dataset_source import dataset_file

    with dataset_file(dataset) as local:  # a URI: the object's bytes
        value = source_fingerprint(local)
    if out_path:
        atomic_write_json(out_path, {"dataset": dataset, "fingerprint": value})
    return value


@stage("train_path")
def load_data_step(*, dataset: str, target_column: str = "", task: str = "auto",
                   test_size: float = DEFAULT_TEST_SIZE, seed: int = DEFAULT_SEED,
                   nan_policy: str = "error", source_fingerprint: str = "",
                   train_path: str, test_path: str) -> dict[str, Any]:
    """Load, check, fingerprint and split; write both splits as Parquet. ``dataset``: a
    bundled name, a CSV/Parquet file path, or a storage URI (``s3://bucket/rows.csv``;
    credentials from the environment, e.g. the S3 Secret).

    Args:
        source_fingerprint: what ``fingerprint_data_step`` saw; when given, the data set must
            still be that (a file changed in between is refused, not split).

    Returns:
        The metadata shared by both splits (plus ``rows`` of each under
        ``train_rows``/``test_rows``).
    """
    from kfp_interop.data import save_split, split_dataset, split_metadata
    from kfp_interop.steps.dataset_source import load_source

    data = load_source(dataset, source_fingerprint=source_fingerprint,
                       target_column=target_column or None, task=task, nan_policy=nan_policy)
    train, test = split_dataset(data, test_size=test_size, seed=seed)
    meta = split_metadata(data)
    meta.update(data_sha256=data.fingerprint(), train_rows=train.n_rows,
                test_rows=test.n_rows, seed=seed, nan_policy=nan_policy)
    save_split(train, train_path, meta)
    save_split(test, test_path, meta)
    return meta


@stage("model_dir")
def train_step(*, train_path: str, test_path: str, framework: str = "sklearn",
               estimator: str = "", hyperparameters: str = "{}", seed: int = DEFAULT_SEED,
               scaler: bool = False, model_dir: str) -> tuple[ModelMeta, Any]:
    """Train and save the native model into ``model_dir``.

    Returns:
        ``(meta, confusion_matrix)``; the :class:`ModelMeta` carries everything later
        stages (export, metadata record) need about the model and its data.
    """
    from kfp_interop.data import load_split, read_split_metadata
    from kfp_interop.frameworks import NativeModel, save_native
    from kfp_interop.training import roc_points, train_model

    data_meta = read_split_metadata(train_path)
    train = load_split(train_path, data_meta)
    test = load_split(test_path)
    result = train_model(train, test, framework=framework, estimator=estimator,
                         hyperparameters=hyperparameters, seed=seed, scaler=scaler)
    native = NativeModel(result.model, framework, result.task)
    saved = save_native(native, model_dir)
    meta = ModelMeta.trained(
        data_meta, framework=framework, framework_version=result.framework_version,
        estimator=result.estimator, task=result.task, hyperparameters=result.hyperparameters,
        seed=seed, metrics=result.metrics, saved=saved, roc_curve=roc_points(native, test))
    write_model_meta(model_dir, meta)
    return meta, result.confusion_matrix


def run_tabular(out_dir: str, *, dataset: str = "iris", target_column: str = "",
                framework: str = "sklearn", estimator: str = "random_forest",
                hyperparameters: str = "{}", nan_policy: str = "error",
                seed: int = DEFAULT_SEED, opset: int = DEFAULT_OPSET,
                tolerance: float = DEFAULT_TOLERANCE, model_name: str = "",
                model_version: str = "1") -> dict[str, str]:
    """The tabular flow up to the attached model, without KFP (for notebooks, tests and
    benchmarks): the same stages the pipeline's components call.

    Returns:
        Paths: ``train``, ``test`` (Parquet), ``native`` (dir), ``model`` (dir with
        ``model.onnx`` and ``model.metadata.json``), plus ``data_meta`` as JSON text.
    """
    import json

    from kfp_interop.steps.export import attach_metadata_step, export_onnx_step

    os.makedirs(out_dir, exist_ok=True)
    paths = {k: os.path.join(out_dir, v) for k, v in (
        ("train", "train.parquet"), ("test", "test.parquet"), ("native", "native"),
        ("exported", "exported"), ("model", "model"))}
    meta = load_data_step(dataset=dataset, target_column=target_column, seed=seed,
                          nan_policy=nan_policy, train_path=paths["train"],
                          test_path=paths["test"])
    train_step(train_path=paths["train"], test_path=paths["test"], framework=framework,
               estimator=estimator, hyperparameters=hyperparameters, seed=seed,
               model_dir=paths["native"])
    export_onnx_step(model_dir=paths["native"], test_path=paths["test"], opset=opset,
                tolerance=tolerance, out_dir=paths["exported"])
    attach_metadata_step(model_dir=paths["exported"], model_name=model_name,
                         model_version=model_version, out_dir=paths["model"])
    paths["data_meta"] = json.dumps(meta)
    return paths


@stage("model_dir")
def train_dask_step(*, dataset: str, target_column: str, task: str = "auto",
                    framework: str = "lightgbm", estimator: str = "",
                    hyperparameters: str = "{}", seed: int = DEFAULT_SEED,
                    test_size: float = DEFAULT_TEST_SIZE, scheduler: str = "",
                    workers: int = 0, model_dir: str, test_path: str
                    ) -> tuple[ModelMeta, Any]:
    """``engine=dask``: train on ``dataset`` (a .parquet/.csv file, a folder of them or a
    storage prefix) read as partitions on a Dask cluster (``scheduler``'s, else a
    LocalCluster of ``workers`` processes in this task), save the native model into
    ``model_dir`` and a sample of the held-out rows as a split at ``test_path`` (what
    export's parity gate and the smoke test read).

    Returns:
        ``(meta, confusion_matrix)`` as :func:`train_step`.
    """
    from kfp_interop.data import TabularData, save_split
    from kfp_interop.errors import InvalidInputError
    from kfp_interop.frameworks import NativeModel, save_native
    from kfp_interop.steps.partitions import table_partitions
    from kfp_interop.training import parse_hyperparameters, roc_points
    from kfp_interop.training.dask_engine import (dask_client, table_fingerprint,
                                                  train_on_dask)

    if not target_column:
        raise InvalidInputError("engine=dask needs target_column: the label column of the "
                                "table's files.")
    hp = parse_hyperparameters(hyperparameters)
    parts = table_partitions(dataset)
    with dask_client(scheduler, workers=workers) as client:
        result = train_on_dask(parts, client, target=target_column, task=task,
                               framework=framework, estimator=estimator, hyperparameters=hp,
                               seed=seed, test_size=test_size)
        fingerprint = table_fingerprint(parts, client)
    sample = result.sample
    test = TabularData(X=sample[result.feature_names].to_numpy(), y=sample[
        result.target_name].to_numpy(), feature_names=result.feature_names,
        target_name=result.target_name, task=result.task, class_labels=result.class_labels,
        source=dataset)
    data_meta = {"feature_names": result.feature_names, "class_labels": result.class_labels,
                 "target_name": result.target_name, "source": dataset,
                 "data_sha256": fingerprint, "rows": result.rows,
                 "train_rows": result.train_rows, "test_rows": result.test_rows,
                 "task": result.task, "seed": seed}
    save_split(test, test_path, data_meta)
    native = NativeModel(result.model, framework, result.task)
    saved = save_native(native, model_dir)
    from kfp_interop.frameworks import get_framework

    fw = get_framework(framework)
    meta = ModelMeta.trained(
        data_meta, framework=framework, framework_version=fw.version(),
        estimator=fw.estimator_of(result.model), task=result.task, hyperparameters=hp,
        seed=seed, metrics=result.metrics, saved=saved, roc_curve=roc_points(native, test),
        engine={"name": "dask", "partitions": result.partitions, "workers": result.workers,
                "scheduler": scheduler or "local", "metrics_rows": result.metrics_rows})
    write_model_meta(model_dir, meta)
    return meta, result.confusion_matrix
