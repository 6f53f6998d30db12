"""The tabular stages: load and split a data set, train a model; and
:func:`run_tabular`, the tabular flow up to the attached model without KFP."""

from __future__ import annotations

import contextlib
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
    storage URI such as ``s3://bucket/rows.csv``; a folder or a storage prefix, what
    engine=dask reads: :func:`~kfp_interop.steps.partitions.table_listing_fingerprint`),
    also written as JSON to ``out_path``."""
    from kfp_interop.data import BUNDLED_DATASETS, source_fingerprint
    from kfp_interop.files import atomic_write_json
    from kfp_interop.storage.objects import dataset_file
    from kfp_interop.steps.partitions import is_table_folder, table_listing_fingerprint

    if dataset not in BUNDLED_DATASETS and is_table_folder(dataset):
        value = table_listing_fingerprint(dataset)
    else:
        with dataset_file(dataset) as local:  # a URI: the object's bytes
            value = source_fingerprint(local)
    if out_path:
        atomic_write_json(out_path, {"dataset": dataset, "fingerprint": value})
    return value


@stage("train_path")
def load_data_step(*, dataset: str, target_column: str = "", task: str = "auto",
                   test_size: float = DEFAULT_TEST_SIZE, seed: int = DEFAULT_SEED,
                   nan_policy: str = "error", source_fingerprint: str = "",
                   engine: str = "local", dask_scheduler: str = "", dask_workers: int = 0,
                   dask_cluster: str = "", dask_worker_cpu: str = "",
                   dask_worker_memory: str = "", train_path: str, test_path: str
                   ) -> dict[str, Any]:
    """Load, check, fingerprint and split; write both splits as Parquet. ``dataset``: a
    bundled name, a CSV/Parquet file path, or a storage URI (``s3://bucket/rows.csv``;
    credentials from the environment, e.g. the S3 Secret).

    With ``engine="dask"`` the table (a file, a folder of files or a storage prefix) is
    never loaded whole: it is split on its partitions on a Dask cluster, the test split
    is a seeded sample of the held-out rows (at most 100,000) and the train split is the
    plan ``train`` follows (:data:`DASK_PLAN`: the same partitions, seed and classes).

    Args:
        source_fingerprint: what ``fingerprint_data_step`` saw; when given, the data set must
            still be that (a file changed in between is refused, not split).
        dask_scheduler, dask_workers: engine=dask: an existing scheduler's address, else
            a LocalCluster of that many processes in this task (0: one per CPU).
        dask_cluster, dask_worker_cpu, dask_worker_memory: ``operator``: a DaskCluster
            of ``dask_workers`` pods (default 2) this task creates and deletes
            (:func:`dask_session`).

    Returns:
        The metadata shared by both splits (plus ``rows`` of each under
        ``train_rows``/``test_rows``).
    """
    from kfp_interop.data import save_split, split_dataset, split_metadata
    from kfp_interop.storage.objects import load_source

    if check_engine(engine) == "dask":
        return _load_dask(dataset=dataset, target_column=target_column, task=task,
                          test_size=test_size, seed=seed, nan_policy=nan_policy,
                          source_fingerprint=source_fingerprint,
                          cluster={"scheduler": dask_scheduler, "workers": dask_workers,
                                   "cluster": dask_cluster, "cpu": dask_worker_cpu,
                                   "memory": dask_worker_memory},
                          train_path=train_path, test_path=test_path)
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
               scaler: bool = False, engine: str = "local", dask_scheduler: str = "",
               dask_workers: int = 0, dask_cluster: str = "", dask_worker_cpu: str = "",
               dask_worker_memory: str = "", model_dir: str) -> tuple[ModelMeta, Any]:
    """Train and save the native model into ``model_dir``. With ``engine="dask"`` the
    train split is load_data's plan: the model trains on the table's partitions on a
    Dask cluster (``dask_scheduler``'s, else a LocalCluster of ``dask_workers``).

    Returns:
        ``(meta, confusion_matrix)``; the :class:`ModelMeta` carries everything later
        stages (export, metadata record) need about the model and its data.
    """
    from kfp_interop.data import load_split, read_split_metadata
    from kfp_interop.frameworks import NativeModel, save_native
    from kfp_interop.training import roc_points, train_model

    plan = read_dask_plan(train_path)
    if (plan is not None) != (check_engine(engine) == "dask"):
        from kfp_interop.errors import InvalidInputError

        raise InvalidInputError(
            f"train runs with engine={engine!r} but load_data ran with engine="
            f"{'dask' if plan is not None else 'local'}: give both the same engine.")
    if plan is not None:
        if scaler:
            from kfp_interop.errors import InvalidInputError

            raise InvalidInputError("scaler=True applies to scikit-learn, which "
                                    "engine=dask does not train.")
        from kfp_interop.frameworks import require_capability
        from kfp_interop.steps.partitions import table_partitions

        require_capability(framework, "dask", "engine=dask")
        parts = table_partitions(plan["source"])
        with dask_session(scheduler=dask_scheduler, workers=dask_workers,
                          cluster=dask_cluster, cpu=dask_worker_cpu,
                          memory=dask_worker_memory) as (client, where):
            return _train_dask(client, parts, plan, framework=framework,
                               estimator=estimator, hyperparameters=hyperparameters,
                               scheduler=where, test_path=test_path, model_dir=model_dir)
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


#: the Secrets whose variables the operator's Dask pods get (by reference): the storage
#: credentials the workers read partitions with (GCS's key file is not mounted there)
DASK_POD_SECRETS = ("kfp-interop-s3", "kfp-interop-azure")
#: seconds to reach the operator's scheduler once it is Running, and for its workers
OPERATOR_CONNECT_TIMEOUT = 120.0
OPERATOR_WORKERS_TIMEOUT = 600.0


@contextlib.contextmanager
def dask_session(*, scheduler: str = "", workers: int = 0, cluster: str = "",
                 cpu: str = "", memory: str = ""):
    """``(client, where)`` for engine=dask: an existing scheduler (``scheduler``), a
    DaskCluster this task creates through the Dask Kubernetes operator and deletes after
    (``cluster="operator"``: ``workers`` pods of ``cpu``/``memory``, default 2 of 1 CPU
    and 4Gi), else a LocalCluster in this task.

    Raises:
        InvalidInputError: both a scheduler and the operator, an unknown ``cluster``.
    """
    from kfp_interop.errors import InvalidInputError
    from kfp_interop.training.dask_engine import dask_client

    if cluster not in ("", "operator"):
        raise InvalidInputError(f"dask_cluster={cluster!r}: empty (a LocalCluster in the "
                                "task, or dask_scheduler's) or operator (a DaskCluster "
                                "through the Dask Kubernetes operator).")
    if cluster == "operator" and scheduler:
        raise InvalidInputError(f"dask_scheduler={scheduler!r} and dask_cluster=operator: "
                                "give one (an existing cluster, or one the task creates).")
    if cluster != "operator":
        with dask_client(scheduler, workers=workers) as client:
            yield client, scheduler or "local"
        return
    from kfp_interop._version import __version__
    from kfp_interop.constants import IMAGE_REPOSITORY
    from kfp_interop.deploy.dask_operator import operator_cluster

    image = (os.environ.get("KFP_INTEROP_DASK_IMAGE") or os.environ.get("KFP_INTEROP_IMAGE")
             or f"{IMAGE_REPOSITORY}:{__version__}")
    n = workers or 2
    with operator_cluster(image=image, workers=n, cpu=cpu or "1", memory=memory or "4Gi",
                          secrets=DASK_POD_SECRETS) as address:
        with dask_client(address, timeout=OPERATOR_CONNECT_TIMEOUT) as client:
            client.wait_for_workers(n, timeout=OPERATOR_WORKERS_TIMEOUT)
            yield client, "operator"


def check_engine(engine: str) -> str:
    """``engine`` if known (one of :data:`kfp_interop.training.dask_engine.ENGINES`).

    Raises:
        InvalidInputError: an unknown engine (named, with the engines there are).
    """
    from kfp_interop.training.dask_engine import ENGINES

    if engine not in ENGINES:
        from kfp_interop.errors import InvalidInputError

        raise InvalidInputError(f"engine={engine!r}: use one of {', '.join(ENGINES)} (dask "
                                "trains LightGBM and XGBoost on a table's partitions; "
                                "docs/scale.md).")
    return engine


def _load_dask(*, dataset: str, target_column: str, task: str, test_size: float, seed: int,
               nan_policy: str, source_fingerprint: str, cluster: dict[str, Any],
               train_path: str, test_path: str) -> dict[str, Any]:
    """engine=dask's load_data: the plan as the train split, the held-out sample as the
    test split."""
    from kfp_interop.errors import InvalidInputError
    from kfp_interop.files import atomic_write_json
    from kfp_interop.steps.partitions import table_partitions

    if not target_column:
        raise InvalidInputError("engine=dask needs target_column: the label column of the "
                                "table's files.")
    if nan_policy not in ("error", "impute"):
        raise InvalidInputError(f"nan_policy={nan_policy!r}: engine=dask takes error "
                                "(refuse missing values, naming the partition) or impute "
                                "(LightGBM and XGBoost handle them natively).")
    if source_fingerprint and not source_fingerprint.startswith("listing-uncached:") and \
            fingerprint_data_step(dataset=dataset) != source_fingerprint:
        from kfp_interop.errors import DatasetError

        raise DatasetError(f"{dataset!r} changed since fingerprint_data saw it: run again.")
    parts = table_partitions(dataset)
    with dask_session(**cluster) as (client, _):
        meta = _plan_dask(client, parts, dataset=dataset, target_column=target_column,
                          task=task, seed=seed, test_size=test_size, test_path=test_path,
                          nan_policy=nan_policy)
    atomic_write_json(train_path, {DASK_PLAN: meta})
    return meta


#: what load_data writes as its train split for engine=dask: the plan train follows
DASK_PLAN = "kfp_interop.dask_split"


def _plan_dask(client, parts, *, dataset: str, target_column: str, task: str, seed: int,
               test_size: float, test_path: str, sample_rows: int = 100_000,
               nan_policy: str = "error") -> dict[str, Any]:
    """engine=dask's load_data: split on the partitions, write a seeded sample of the
    held-out rows as the test split (what export's parity gate and the smoke test read)
    and return the plan train follows (the same split: same partitions, seed, classes)."""
    from kfp_interop.data import TabularData, save_split
    from kfp_interop.training.dask_engine import (held_out_sample, split_table,
                                                  table_fingerprint)

    import dask

    split = split_table(parts, target=target_column, task=task, seed=seed,
                        test_size=test_size, nan_policy=nan_policy)
    train_rows, test_rows = (int(n) for n in dask.compute(split.train.shape[0],
                                                          split.test.shape[0]))
    held, test_rows = held_out_sample(split, seed=seed, rows=sample_rows,
                                      test_rows=test_rows)
    sample = TabularData(X=held[split.feature_names].to_numpy(),
                         y=held[split.target_name].to_numpy(),
                         feature_names=split.feature_names, target_name=split.target_name,
                         task=split.task, class_labels=split.class_labels, source=dataset)
    meta = {"feature_names": split.feature_names, "class_labels": split.class_labels,
            "target_name": split.target_name, "source": dataset, "task": split.task,
            "data_sha256": table_fingerprint(parts, client), "rows": train_rows + test_rows,
            "train_rows": train_rows, "test_rows": test_rows, "seed": seed,
            "test_size": test_size, "partitions": split.partitions,
            "sample_rows": len(held), "engine": "dask", "nan_policy": nan_policy}
    save_split(sample, test_path, meta)
    return meta


def _train_dask(client, parts, plan: dict[str, Any], *, framework: str, estimator: str,
                hyperparameters: str, scheduler: str, test_path: str, model_dir: str
                ) -> tuple[ModelMeta, Any]:
    """engine=dask's train, following load_data's plan."""
    import pandas as pd

    from kfp_interop.data import load_split
    from kfp_interop.frameworks import NativeModel, get_framework, save_native
    from kfp_interop.training import parse_hyperparameters, roc_points
    from kfp_interop.training.dask_engine import train_on_dask

    hp = parse_hyperparameters(hyperparameters)
    held = load_split(test_path)  # load_data's sample of the held-out rows
    frame = pd.DataFrame(held.X, columns=held.feature_names)
    frame[held.target_name] = held.y
    result = train_on_dask(parts, client, target=plan["target_name"], task=plan["task"],
                           framework=framework, estimator=estimator, hyperparameters=hp,
                           seed=plan["seed"], test_size=plan["test_size"],
                           class_labels=plan["class_labels"],
                           nan_policy=plan.get("nan_policy", "error"), held_out=frame,
                           test_rows=plan["test_rows"])
    native = NativeModel(result.model, framework, result.task)
    saved = save_native(native, model_dir)
    fw = get_framework(framework)
    meta = ModelMeta.trained(
        {**plan, "train_rows": result.train_rows, "test_rows": result.test_rows,
         "rows": result.rows}, framework=framework, framework_version=fw.version(),
        estimator=fw.estimator_of(result.model), task=result.task, hyperparameters=hp,
        seed=plan["seed"], metrics=result.metrics, saved=saved,
        roc_curve=roc_points(native, held),
        engine={"name": "dask", "partitions": result.partitions, "workers": result.workers,
                "scheduler": scheduler or "local", "metrics_rows": result.metrics_rows})
    write_model_meta(model_dir, meta)
    return meta, result.confusion_matrix


def read_dask_plan(path: str) -> dict[str, Any] | None:
    """The plan load_data wrote for engine=dask at ``path``, else ``None`` (a split)."""
    import json

    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data.get(DASK_PLAN) if isinstance(data, dict) else None


@stage("model_dir")
def train_dask_step(*, dataset: str, target_column: str, task: str = "auto",
                    framework: str = "lightgbm", estimator: str = "",
                    hyperparameters: str = "{}", seed: int = DEFAULT_SEED,
                    test_size: float = DEFAULT_TEST_SIZE, scheduler: str = "",
                    workers: int = 0, model_dir: str, test_path: str
                    ) -> tuple[ModelMeta, Any]:
    """engine=dask's load_data and train in one call, on one cluster: train on
    ``dataset`` (a .parquet/.csv file, a folder of them or a storage prefix) read as
    partitions on a Dask cluster (``scheduler``'s, else a LocalCluster of ``workers``
    processes), save the native model into ``model_dir`` and a sample of the held-out
    rows as a split at ``test_path``.

    Returns:
        ``(meta, confusion_matrix)`` as :func:`train_step`.
    """
    from kfp_interop.errors import InvalidInputError
    from kfp_interop.frameworks import require_capability
    from kfp_interop.steps.partitions import table_partitions

    if not target_column:
        raise InvalidInputError("engine=dask needs target_column: the label column of the "
                                "table's files.")
    require_capability(framework, "dask", "engine=dask")  # before reading anything
    parts = table_partitions(dataset)
    with dask_session(scheduler=scheduler, workers=workers) as (client, where):
        plan = _plan_dask(client, parts, dataset=dataset, target_column=target_column,
                          task=task, seed=seed, test_size=test_size, test_path=test_path)
        return _train_dask(client, parts, plan, framework=framework, estimator=estimator,
                           hyperparameters=hyperparameters, scheduler=where,
                           test_path=test_path, model_dir=model_dir)
