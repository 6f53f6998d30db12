"""``engine=dask``: train LightGBM and XGBoost on a table read as partitions, never whole
in one process, through the frameworks' own Dask interfaces (the framework capability
``dask``); the model that comes back is the one local training gives, so export,
parity, the record, storage and deployment run unchanged.

The table is a list of :class:`Partition` (a file each; the steps layer makes them from
a file, a folder or an ``s3://`` prefix, reading through kfp-interop's own storage
clients), read lazily by ``dask.dataframe.from_map``; every partition is checked when it
is read (its columns the first one's, the target present, numbers only), and an error
names it. The split is Dask's ``random_split`` on the partitions (seeded); the training
rows are persisted on the workers (X and y from one persisted frame: taking them from
one lazy frame can give different partition counts). Metrics come from a uniform,
seeded sample of the held-out rows (at most 100,000): the one load_data draws and writes
as the test split, which export's parity gate and the smoke test read.

Where the cluster comes from (:func:`dask_client`): an existing scheduler's address
(reached within a bounded time, or a named error), else a ``LocalCluster`` inside the
task sized to its pod (CPU quota, memory limit), one thread per worker process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import types
from typing import Any, Callable, Iterator

from kfp_interop.errors import DatasetError, InvalidInputError

__all__ = ["ENGINES", "Partition", "DaskSplit", "DaskTrainResult", "dask_client",
           "pod_resources", "read_partitions", "split_table", "held_out_sample",
           "train_on_dask", "table_fingerprint"]

ENGINES = ("local", "dask")
_CLASS_LIMIT = 20  # as the local engine: more distinct values than this is a regression


@dataclasses.dataclass(frozen=True)
class Partition:
    """One part of the table: ``name`` (what errors call it) and ``read`` (a picklable
    callable returning it as a pandas DataFrame)."""

    name: str
    read: Callable[[], Any]


def pod_resources() -> tuple[int, int]:
    """``(cpus, memory bytes)`` this process may use: the cgroup's CPU quota and memory
    limit where set (a Kubernetes pod's limits), else the machine's."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()
        if quota != "max":
            cpus = max(1, min(cpus, int(int(quota) // int(period)) or 1))
    except (OSError, ValueError):
        pass
    import psutil

    memory = psutil.virtual_memory().total
    try:
        limit = open("/sys/fs/cgroup/memory.max").read().strip()
        if limit != "max":
            memory = min(memory, int(limit))
    except (OSError, ValueError):
        pass
    return cpus, memory


def _warm_imports() -> None:
    """Import what reading partitions needs, once per worker before any task runs: a
    worker importing pandas in two threads at once (its event loop deserializing a
    task's metadata, its executor reading a partition) can deadlock on the module lock
    ("partially initialized module 'pandas.core.frame'")."""
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401


@contextlib.contextmanager
def dask_client(scheduler: str = "", *, workers: int = 0, timeout: float = 10.0
                ) -> Iterator[Any]:
    """A ``distributed.Client``: to ``scheduler`` (``tcp://host:8786``) when given, else
    to a ``LocalCluster`` of ``workers`` processes (0: one per CPU of the pod), one
    thread each, the pod's memory shared among them; closed (and the local cluster
    stopped) when the block ends, whatever happens in it.

    Raises:
        InvalidInputError: the scheduler cannot be reached within ``timeout`` seconds
            (named).
    """
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=f"{timeout}s")
        except (OSError, TimeoutError, ValueError) as e:
            raise InvalidInputError(
                f"The Dask scheduler {scheduler!r} cannot be reached within {timeout:g} s "
                f"({type(e).__name__}: {str(e).strip()[:200]}). Give the address of a "
                "running scheduler (tcp://HOST:8786), or leave dask_scheduler empty for a "
                "cluster inside the task.") from e
        try:
            client.run(_warm_imports)
            yield client
        finally:
            client.close()
        return
    cpus, memory = pod_resources()
    n = workers or cpus
    environ = dict(os.environ)  # a LocalCluster's nannies set their workers' variables
    # (OMP_NUM_THREADS=1, PYTHONHASHSEED, ...) in this process's environment: restored
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           dashboard_address=None, host="127.0.0.1",
                           memory_limit=int(memory * 0.9 / n), silence_logs=logging.ERROR)
    try:
        client = Client(cluster)
        try:
            client.run(_warm_imports)
            yield client
        finally:
            client.close()
    finally:
        cluster.close()
        os.environ.clear()
        os.environ.update(environ)


def _checked(part: Partition, *, expected: list[str], target: str, nans: str = "error"):
    """A partition read and checked against the first one's columns. (Not named
    ``columns``: Dask's ``from_map`` passes its column projection under that name.)"""
    import pandas as pd

    frame = part.read()
    if target not in frame.columns:
        raise DatasetError(f"Partition {part.name!r} has no target column {target!r} "
                           f"(its columns: {list(frame.columns)}).")
    if list(frame.columns) != expected:
        missing = [c for c in expected if c not in frame.columns]
        extra = [c for c in frame.columns if c not in expected]
        raise DatasetError(f"Partition {part.name!r} has other columns than the first "
                           f"partition: missing {missing}, extra {extra}"
                           + ("" if missing or extra else ", in another order")
                           + ". Every partition must have the same columns.")
    features = [c for c in expected if c != target]
    text = [c for c in features if not pd.api.types.is_numeric_dtype(frame[c])
            or pd.api.types.is_bool_dtype(frame[c])]
    if text:
        raise DatasetError(f"Partition {part.name!r}: column(s) {text} are not numbers; "
                           "engine=dask takes numeric features (encode them first, or use "
                           "engine=local, where scikit-learn encodes text).")
    out = frame[features].astype("float64")
    if nans == "error":
        missing = {c: int(n) for c, n in out.isna().sum().items() if n}
        if missing or frame[target].isna().any():
            if frame[target].isna().any():
                missing[target] = int(frame[target].isna().sum())
            raise DatasetError(f"Partition {part.name!r} has missing values {missing} "
                               "(column: count). Set nan_policy=impute to train with them "
                               "(LightGBM and XGBoost handle missing features), or clean "
                               "the data.")
    out[target] = frame[target]
    return out


def read_partitions(parts: list[Partition], *, target: str, nan_policy: str = "error"):
    """The table as a Dask DataFrame, one partition per :class:`Partition` (features as
    float64, then the target), read lazily; the first partition is read here for the
    columns every other one must have.

    Raises:
        DatasetError: no partitions, or the first lacks the target (named).
    """
    import dask.dataframe as dd

    if not parts:
        raise DatasetError("No partitions to read: the folder or prefix holds no .parquet "
                           "or .csv files.")
    first = parts[0].read()
    if target not in first.columns:
        raise DatasetError(f"Partition {parts[0].name!r} has no target column {target!r} "
                           f"(its columns: {list(first.columns)}).")
    columns = list(first.columns)
    meta = _checked(Partition(parts[0].name, lambda: first.iloc[:0]), expected=columns,
                    target=target)
    return dd.from_map(functools.partial(_checked, expected=columns, target=target,
                                         nans=nan_policy), parts,
                       meta=meta, enforce_metadata=False)


def _partition_digest(part: Partition) -> str:
    import hashlib

    import pandas as pd

    frame = part.read()
    digest = hashlib.sha256("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def table_fingerprint(parts: list[Partition], client: Any) -> str:
    """sha256 of the table's content, partition by partition on the workers (column
    names and pandas' row hashes of each, in partition order): the same rows in the
    same partitions give the same value whatever the file format."""
    import hashlib

    digests = client.gather(client.map(_partition_digest, parts, pure=False))
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()


@dataclasses.dataclass
class DaskTrainResult:
    """What :func:`train_on_dask` returns: the fitted (local) model and its facts;
    ``sample`` is a pandas DataFrame of held-out rows (features, then the target as class
    indices or values) for the parity gate and the smoke test."""

    model: Any
    task: str
    feature_names: list[str]
    target_name: str
    class_labels: list[str] | None
    metrics: dict[str, float]
    confusion_matrix: list[list[int]] | None
    rows: int
    train_rows: int
    test_rows: int
    metrics_rows: int
    partitions: int
    workers: int
    sample: Any


def _task(frame, target: str, task: str) -> str:
    import pandas as pd

    if task != "auto":
        return task
    head = frame[target].head(10_000, npartitions=1, compute=True)  # the first file only
    if pd.api.types.is_float_dtype(head) and head.nunique() > _CLASS_LIMIT:
        return "regression"
    if pd.api.types.is_numeric_dtype(head) and not pd.api.types.is_bool_dtype(head):
        return "regression" if head.nunique() > _CLASS_LIMIT else "classification"
    return "classification"


@dataclasses.dataclass
class DaskSplit:
    """The table split on its partitions: lazy ``train`` and ``test`` frames (features as
    float64, the target as class indices or float values), and what describes them."""

    train: Any
    test: Any
    task: str
    feature_names: list[str]
    target_name: str
    class_labels: list[str] | None
    partitions: int


def split_table(parts: list[Partition], *, target: str, task: str = "auto", seed: int = 42,
                test_size: float = 0.25, class_labels: list[str] | None = None,
                nan_policy: str = "error") -> DaskSplit:
    """The table read lazily and split with Dask's ``random_split`` (seeded, partition by
    partition: the same partitions and seed give the same rows on every cluster).
    Classes are the target's sorted distinct values (one pass over the target column),
    unless ``class_labels`` already says them (the split made before, in load_data).

    Raises:
        DatasetError: as :func:`read_partitions`; a single class.
    """
    frame = read_partitions(parts, target=target, nan_policy=nan_policy)
    task = _task(frame, target, task)
    features = [c for c in frame.columns if c != target]
    labels = class_labels
    if task == "classification":
        if labels is None:
            values = sorted(frame[target].drop_duplicates().compute().tolist(),
                            key=lambda v: (str(type(v)), v))
            labels = [str(v) for v in values]
        if len(labels) < 2:
            raise DatasetError(f"The target {target!r} has one class ({labels}): nothing to "
                               "classify.")
        codes = {v: i for i, v in enumerate(labels)}
        frame = frame.assign(**{target: frame[target].astype(str).map(
            codes, meta=(target, "int64"))})
    else:
        labels = None
        frame = frame.assign(**{target: frame[target].astype("float64")})
    train, test = frame.random_split([1 - test_size, test_size], random_state=seed)
    return DaskSplit(train, test, task, features, target, labels, frame.npartitions)


def held_out_sample(split: DaskSplit, *, seed: int, rows: int,
                    test_rows: int | None = None) -> tuple[Any, int]:
    """``(a seeded uniform sample of at most rows held-out rows as pandas, the held-out
    row count)`` (``test_rows``: the count when known).

    Raises:
        DatasetError: the held-out split is empty.
    """
    test_rows = int(len(split.test)) if test_rows is None else test_rows
    if not test_rows:
        raise DatasetError("The held-out split is empty: the table has too few rows.")
    held = split.test.sample(frac=min(1.0, rows / test_rows), random_state=seed).compute()
    return held.reset_index(drop=True), test_rows


def train_on_dask(parts: list[Partition], client: Any, *, target: str, task: str = "auto",
                  framework: str, estimator: str = "", hyperparameters: dict | None = None,
                  seed: int = 42, test_size: float = 0.25, metrics_rows: int = 100_000,
                  sample_rows: int = 10_000, class_labels: list[str] | None = None,
                  nan_policy: str = "error", held_out: Any = None,
                  test_rows: int | None = None) -> DaskTrainResult:
    """Train on the partitions on ``client``'s cluster. ``held_out`` (a pandas sample of
    the held-out rows, class indices as the split has them) and ``test_rows``: what
    load_data already drew, scored on instead of drawing again.

    Raises:
        UnsupportedOperationError: the framework does not train on Dask (names those
            that do).
        DatasetError: a partition that does not fit (named), an empty table or split.
        InvalidInputError: an estimator or hyperparameters the framework refuses.
    """
    import numpy as np

    from kfp_interop.frameworks import NativeModel, require_capability
    from kfp_interop.training.metrics import score

    fw = require_capability(framework, "dask", "engine=dask")
    split = split_table(parts, target=target, task=task, seed=seed, test_size=test_size,
                        class_labels=class_labels, nan_policy=nan_policy)
    features, task = split.feature_names, split.task
    train = split.train.persist()
    train_rows = int(len(train))
    if not train_rows:
        raise DatasetError("The training split is empty: the table has too few rows.")
    model = fw.build_estimator(estimator, task, hyperparameters=dict(hyperparameters or {}),
                               seed=seed)
    workers = set(client.scheduler_info()["workers"])
    try:
        fitted = fw.dask_fit(model, client, train[features], train[target])
    except (DatasetError, InvalidInputError):
        raise
    except Exception as e:  # noqa: BLE001 - LightGBM's, XGBoost's and Dask's own types
        lost = workers - set(client.scheduler_info()["workers"])
        from kfp_interop.errors import DistributedTrainingError

        raise DistributedTrainingError(
            f"{framework} training on Dask failed"
            + (f": worker(s) {sorted(lost)} were lost while it trained" if lost else "")
            + f" ({type(e).__name__}: {str(e).strip()[:300]}). "
            + ("Give the workers more memory (dask_worker_memory) or fewer rows each "
               "(more workers), and run again." if lost else "See the workers' logs.")
        ) from e
    del train
    if held_out is not None and test_rows is not None:
        held = held_out
    else:
        held, test_rows = held_out_sample(split, seed=seed, rows=metrics_rows)
    rows = types.SimpleNamespace(X=held[features].to_numpy(dtype=np.float64),
                                 y=held[target].to_numpy())  # what score() reads
    metrics, cm = score(NativeModel(fitted, framework, task), rows)
    return DaskTrainResult(
        model=fitted, task=task, feature_names=features, target_name=target,
        class_labels=split.class_labels, metrics=metrics, confusion_matrix=cm,
        rows=train_rows + test_rows, train_rows=train_rows, test_rows=test_rows,
        metrics_rows=len(held), partitions=split.partitions,
        workers=len(client.scheduler_info()["workers"]),
        sample=held.iloc[:sample_rows])
