"""engine=dask: LightGBM and XGBoost trained on a table read as partitions (a folder of
Parquet files, an s3:// prefix), on a real Dask cluster (LocalCluster worker processes),
give the same native model types and the same quality as the local engine on the same
split; export, parity and the record run unchanged; bad tables are named."""

import os
import time

import numpy as np
import pandas as pd
import pytest

from kfp_interop.errors import DatasetError, InvalidInputError, UnsupportedOperationError

pytest.importorskip("distributed")

FEATURES = [f"f{i}" for i in range(6)]


def write_table(folder, *, parts=4, rows=3000, seed=0, task="classification"):
    """Partition files the way a data pipeline leaves them: one Parquet file per chunk,
    the label as text for classification."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(parts):
        X = rng.normal(size=(rows, len(FEATURES)))
        signal = X[:, 0] + 0.5 * X[:, 1] - X[:, 2] * X[:, 3] + 0.3 * rng.normal(size=rows)
        frame = pd.DataFrame(X, columns=FEATURES)
        frame["label"] = (np.where(signal > 0.5, "high", np.where(signal < -0.5, "low", "mid"))
                          if task == "classification" else signal)
        frame.to_parquet(os.path.join(folder, f"part-{i:03d}.parquet"))
    return str(folder)


@pytest.fixture(scope="module")
def cluster():
    """One LocalCluster (2 worker processes) for the module: the steps reach it by its
    address, the way a pipeline reaches an existing cluster."""
    from distributed import LocalCluster

    environ = dict(os.environ)  # the nannies set their workers' variables in ours
    c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                     dashboard_address=None, host="127.0.0.1")
    try:
        yield c.scheduler_address
    finally:
        c.close()
        os.environ.clear()
        os.environ.update(environ)


def _same_split(folder, seed=42, test_size=0.25):
    """The engine's split, materialized (the table is small here), with class indices."""
    from kfp_interop.steps.partitions import table_partitions
    from kfp_interop.training.dask_engine import read_partitions

    frame = read_partitions(table_partitions(folder), target="label")
    train, test = frame.random_split([1 - test_size, test_size], random_state=seed)
    return train.compute(scheduler="sync"), test.compute(scheduler="sync")


@pytest.mark.parametrize("framework", ["lightgbm", "xgboost"])
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_dask_and_local_engines_agree(framework, task, cluster, tmp_path):
    from kfp_interop.data import TabularData
    from kfp_interop.steps import tabular
    from kfp_interop.training import train_model

    folder = write_table(tmp_path / "table", rows=10_000, task=task)
    meta, _ = tabular.train_dask_step(
        dataset=folder, target_column="label", task=task, framework=framework,
        hyperparameters='{"n_estimators": 300}', scheduler=cluster,
        model_dir=str(tmp_path / "model"), test_path=str(tmp_path / "test.parquet"))
    assert meta.engine["name"] == "dask" and meta.engine["partitions"] == 4
    assert meta.engine["workers"] == 2 and meta.rows == 40_000
    train, test = _same_split(folder)
    assert meta.train_rows == len(train) and meta.test_rows == len(test)
    labels = meta.class_labels
    codes = {v: i for i, v in enumerate(labels)} if labels else None

    def data(frame):
        y = frame["label"].map(codes).to_numpy() if codes else frame["label"].to_numpy()
        return TabularData(X=frame[FEATURES].to_numpy(), y=y, feature_names=FEATURES,
                           target_name="label", task=task, class_labels=labels,
                           source=folder)

    local = train_model(data(train), data(test), framework=framework,
                        hyperparameters={"n_estimators": 300})
    # trained to convergence: an under-trained LightGBM moves by up to 0.013 R2 with its
    # bin boundaries alone (255 vs 254 bins, 60 trees), and distributed LightGBM finds
    # each feature's bins on one worker's rows (docs/scale.md)
    key = "accuracy" if task == "classification" else "r2"
    assert abs(local.metrics[key] - meta.metrics[key]) <= 0.005, (local.metrics, meta.metrics)
    # the same native type as the local engine's: export and parity run unchanged
    from kfp_interop.steps.export import attach_metadata_step, export_onnx_step

    exported = export_onnx_step(model_dir=str(tmp_path / "model"),
                                test_path=str(tmp_path / "test.parquet"),
                                out_dir=str(tmp_path / "exported"))
    assert exported.parity["passed"] and exported.parity["n_rows"] == meta.test_rows
    record = attach_metadata_step(model_dir=str(tmp_path / "exported"),
                                  out_dir=str(tmp_path / "attached"))
    assert record.training["engine"]["partitions"] == 4
    assert record.training["rows"] == 40_000


def test_reruns_give_the_same_quality_not_the_same_bytes(cluster, tmp_path):
    """What varies between reruns (docs/scale.md): the Dask scheduler decides per run
    which worker holds which partitions and in which order a worker concatenates them;
    LightGBM finds each feature's bin boundaries on one worker's rows and sums
    gradients in row order, so later trees differ in their last digits and then in
    their splits. The quality does not."""
    from kfp_interop.files import sha256_file
    from kfp_interop.steps import tabular

    folder = write_table(tmp_path / "table", parts=3, rows=10_000)
    metas = {}
    for run, where in (("a", {"workers": 1}), ("b", {"workers": 1}),
                       ("c", {"scheduler": cluster}), ("d", {"scheduler": cluster})):
        metas[run], _ = tabular.train_dask_step(
            dataset=folder, target_column="label", framework="lightgbm",
            hyperparameters='{"n_estimators": 300}', model_dir=str(tmp_path / run),
            test_path=str(tmp_path / f"{run}.parquet"), **where)
        assert sha256_file(str(tmp_path / run / "model.txt")) == metas[run].native_sha256
        assert metas[run].engine["workers"] == (1 if "workers" in where else 2)
    for x, y in (("a", "b"), ("c", "d"), ("a", "c")):
        assert abs(metas[x].metrics["accuracy"] - metas[y].metrics["accuracy"]) <= 0.005


def test_scikit_learn_is_refused_naming_the_frameworks_that_take_the_engine(cluster, tmp_path):
    from kfp_interop.steps import tabular

    folder = write_table(tmp_path / "t", parts=2, rows=200)
    with pytest.raises(UnsupportedOperationError, match="engine=dask.*lightgbm.*xgboost"):
        tabular.train_dask_step(dataset=folder, target_column="label", framework="sklearn",
                                scheduler=cluster, model_dir=str(tmp_path / "m"),
                                test_path=str(tmp_path / "t.parquet"))
    assert not (tmp_path / "m").exists()


def test_an_unreachable_scheduler_is_named_in_bounded_time(tmp_path):
    from kfp_interop.steps import tabular

    folder = write_table(tmp_path / "t", parts=2, rows=200)
    start = time.monotonic()
    with pytest.raises(InvalidInputError, match="tcp://127.0.0.1:9.*cannot be reached"):
        tabular.train_dask_step(dataset=folder, target_column="label", framework="lightgbm",
                                scheduler="tcp://127.0.0.1:9", model_dir=str(tmp_path / "m"),
                                test_path=str(tmp_path / "t.parquet"))
    assert time.monotonic() - start < 30
    assert not (tmp_path / "m").exists()


def test_bad_tables_are_named(cluster, tmp_path):
    from kfp_interop.steps import tabular

    def train(folder):
        return tabular.train_dask_step(dataset=str(folder), target_column="label",
                                       framework="lightgbm", scheduler=cluster,
                                       model_dir=str(tmp_path / "m"),
                                       test_path=str(tmp_path / "t.parquet"))

    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="holds no .parquet or .csv"):
        train(tmp_path / "empty")
    folder = write_table(tmp_path / "cols", parts=3, rows=200)
    odd = pd.read_parquet(os.path.join(folder, "part-001.parquet")).rename(
        columns={"f2": "f2_renamed"})
    odd.to_parquet(os.path.join(folder, "part-001.parquet"))
    with pytest.raises(DatasetError, match="part-001.parquet.*missing \\['f2'\\].*"
                                           "extra \\['f2_renamed'\\]"):
        train(folder)
    folder = write_table(tmp_path / "target", parts=3, rows=200)
    pd.read_parquet(os.path.join(folder, "part-002.parquet")).drop(columns="label").to_parquet(
        os.path.join(folder, "part-002.parquet"))
    with pytest.raises(DatasetError, match="part-002.parquet.*no target column 'label'"):
        train(folder)
    folder = write_table(tmp_path / "text", parts=2, rows=200)
    frame = pd.read_parquet(os.path.join(folder, "part-000.parquet"))
    frame["f0"] = "a"
    frame.to_parquet(os.path.join(folder, "part-000.parquet"))
    with pytest.raises(DatasetError, match="\\['f0'\\] are not numbers"):
        train(folder)
    assert not (tmp_path / "m").exists()


def test_an_s3_prefix_is_read_by_the_workers(s3_env, monkeypatch, tmp_path):
    """Partitions under s3://bucket/prefix, read in the worker processes through
    kfp-interop's S3 client with the Secret's variables (a LocalCluster in the task)."""
    import hashlib

    from kfp_interop.steps import tabular
    from kfp_interop.storage import open_store

    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    folder = write_table(tmp_path / "local", parts=3, rows=1000)
    store = open_store("s3://dask-tables")
    store.prepare(create_bucket=True)
    for name in sorted(os.listdir(folder)):
        data = open(os.path.join(folder, name), "rb").read()
        store.put_bytes(f"events/day=1/{name}", data, sha256=hashlib.sha256(data).hexdigest())
    meta, _ = tabular.train_dask_step(
        dataset="s3://dask-tables/events", target_column="label", framework="xgboost",
        hyperparameters='{"n_estimators": 20}', workers=2,
        model_dir=str(tmp_path / "m"), test_path=str(tmp_path / "t.parquet"))
    assert meta.engine["partitions"] == 3 and meta.rows == 3000
    assert meta.dataset == "s3://dask-tables/events" and meta.metrics["accuracy"] > 0.6
    with pytest.raises(DatasetError, match="s3://dask-tables/nothing.*no .parquet"):
        tabular.train_dask_step(dataset="s3://dask-tables/nothing", target_column="label",
                                framework="xgboost", model_dir=str(tmp_path / "m2"),
                                test_path=str(tmp_path / "t2.parquet"))


def test_the_tabular_pipeline_runs_with_engine_dask(tmp_path):
    """kfp.local: load_data splits on the partitions and writes the held-out sample,
    train follows its plan on a LocalCluster in the task; export, parity, the record,
    storage, the server and the smoke test run unchanged."""
    import kfp_interop
    from kfp_interop.metadata import load_metadata

    folder = write_table(tmp_path / "table", parts=3, rows=2000)
    summary = kfp_interop.run("tabular", {
        "dataset": folder, "target_column": "label", "framework": "xgboost",
        "estimator": "", "hyperparameters": '{"n_estimators": 40}', "engine": "dask",
        "dask_workers": 2, "register": False}, output_dir=str(tmp_path / "out"))
    assert summary["status"] == "succeeded", summary.get("error")
    assert summary["smoke_test"]["passed"]
    record = load_metadata(summary["metadata_path"])
    assert record.training["engine"] == {"name": "dask", "partitions": 3, "workers": 2,
                                         "scheduler": "local",
                                         "metrics_rows": record.training["test_rows"]}
    assert record.training["rows"] == 6000 and record.class_labels == ["high", "low", "mid"]
    assert record.parity["passed"] and record.parity["n_rows"] == record.training["test_rows"]


def test_engines_are_checked_and_must_agree(tmp_path):
    from kfp_interop.steps import tabular

    folder = write_table(tmp_path / "t", parts=2, rows=200)
    with pytest.raises(InvalidInputError, match="engine='spark'.*local, dask"):
        tabular.load_data_step(dataset=folder, target_column="label", engine="spark",
                               train_path=str(tmp_path / "tr"), test_path=str(tmp_path / "te"))
    tabular.load_data_step(dataset="iris", train_path=str(tmp_path / "tr.parquet"),
                           test_path=str(tmp_path / "te.parquet"))
    with pytest.raises(InvalidInputError, match="engine='dask'.*load_data ran with "
                                                "engine=local"):
        tabular.train_step(train_path=str(tmp_path / "tr.parquet"),
                           test_path=str(tmp_path / "te.parquet"), framework="lightgbm",
                           engine="dask", model_dir=str(tmp_path / "m"))
    assert not (tmp_path / "m").exists()


def test_a_worker_that_dies_fails_the_run_and_the_cluster_goes(tmp_path, monkeypatch):
    """A worker process killed while LightGBM trains (2 s into the fit): the step fails
    with DistributedTrainingError naming the lost worker, and the task's LocalCluster is
    gone with all its processes; the process environment is as it was."""
    import threading

    import psutil

    from kfp_interop.errors import DistributedTrainingError
    from kfp_interop.frameworks import get_framework
    from kfp_interop.steps import tabular

    folder = write_table(tmp_path / "table", parts=4, rows=20_000)
    me = psutil.Process()

    def workers():  # worker processes of the step's cluster (not the module's)
        return [p for p in me.children(recursive=True)
                if "spawn_main" in " ".join(p.cmdline()) and p.pid not in others]

    others = {p.pid for p in me.children(recursive=True)}
    killed = []
    fw = type(get_framework("lightgbm"))
    fit = fw.dask_fit

    def fit_and_kill(self, model, client, X, y):
        def kill():
            time.sleep(2)
            victim = workers()[0]
            victim.kill()
            killed.append(victim.pid)

        threading.Thread(target=kill, daemon=True).start()
        return fit(self, model, client, X, y)

    monkeypatch.setattr(fw, "dask_fit", fit_and_kill)
    environ = dict(os.environ)
    with pytest.raises(DistributedTrainingError, match="lightgbm training on Dask failed: "
                                                       "worker\\(s\\) .* were lost") as failure:
        tabular.train_dask_step(dataset=folder, target_column="label", framework="lightgbm",
                                hyperparameters='{"n_estimators": 5000}', workers=2,
                                model_dir=str(tmp_path / "m"),
                                test_path=str(tmp_path / "t.parquet"))
    assert killed and "more memory" in str(failure.value)
    assert not (tmp_path / "m").exists()
    time.sleep(1)
    assert workers() == []
    assert dict(os.environ) == environ
