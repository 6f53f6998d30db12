"""Federated learning: partitions as Flower Datasets defines them, Flower's strategies one
round per step (with their state carried between steps exactly as Flower keeps it),
differential privacy that says what it computes, clients whose rows never leave their
step, and the pipeline under kfp.local."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kfp_interop.errors import InvalidInputError, UnknownNameError
from kfp_interop.federated.partition import dirichlet_partition, iid_partition, partition

Y = np.repeat(np.arange(10), 50)  # 500 rows, 10 balanced classes


def test_iid_partition_is_a_seeded_near_equal_split():
    parts = iid_partition(103, 4, seed=1)
    assert sorted(len(p) for p in parts) == [25, 26, 26, 26]
    assert sorted(np.concatenate(parts).tolist()) == list(range(103))
    assert all((a == b).all() for a, b in zip(parts, iid_partition(103, 4, seed=1)))
    assert not all((a == b).all() for a, b in zip(parts, iid_partition(103, 4, seed=2)))


def test_dirichlet_partition_skews_labels_by_alpha():
    def classes_per_client(alpha):
        parts = dirichlet_partition(Y, 5, alpha=alpha, seed=0)
        assert sorted(np.concatenate(parts).tolist()) == list(range(len(Y)))
        # classes holding at least 10% of a client's rows
        return np.mean([np.sum(np.bincount(Y[p], minlength=10) >= 0.1 * len(p))
                        for p in parts])

    assert classes_per_client(0.1) < 4 < classes_per_client(100.0)
    a = dirichlet_partition(Y, 5, alpha=0.5, seed=3)
    b = dirichlet_partition(Y, 5, alpha=0.5, seed=3)
    assert all((x == y).all() for x, y in zip(a, b))


def test_partition_bad_input_is_named():
    with pytest.raises(InvalidInputError, match="alpha=0 must be a number above 0"):
        partition(Y, 3, kind="dirichlet", alpha=0, seed=0)
    with pytest.raises(InvalidInputError, match="alpha=-1"):
        partition(Y, 3, kind="dirichlet", alpha=-1, seed=0)
    with pytest.raises(InvalidInputError, match="600 clients for 500 training rows"):
        partition(Y, 600, kind="iid", seed=0)
    with pytest.raises(InvalidInputError, match="clients=0"):
        partition(Y, 0, kind="iid", seed=0)
    with pytest.raises(InvalidInputError, match="Unknown partition 'skewed'"):
        partition(Y, 3, kind="skewed", seed=0)
    tiny = np.repeat(np.arange(2), 3)  # 6 rows, 2 classes, 5 clients, alpha 0.01
    with pytest.raises(InvalidInputError, match=r"client\(s\) \[.*\] get fewer than 1 row.*"
                                                r"raise alpha"):
        partition(tiny, 5, kind="dirichlet", alpha=0.01, seed=0)


def weights(*scale):
    return [np.full((2, 3), s, np.float32) for s in scale]


def test_fedavg_is_the_example_weighted_mean():
    from kfp_interop.federated.strategies import aggregate

    new, state = aggregate("fedavg", weights(0), [(weights(1), 10), (weights(3), 30)],
                           server_round=1)
    assert np.allclose(new[0], 2.5) and new[0].dtype == np.float32 and state == {}


def test_strategy_state_between_steps_equals_flowers_own_loop():
    """FedAdam run by Flower in one process for three rounds, against three calls that
    save and restore its moments between them (as the pipeline's steps do)."""
    from flwr.common import (Code, FitRes, Status, ndarrays_to_parameters,
                             parameters_to_ndarrays)
    from flwr.server.strategy import FedAdam

    from kfp_interop.federated.strategies import aggregate

    rng = np.random.default_rng(0)
    rounds = [[(list(rng.normal(size=(2, 2, 3)).astype(np.float32)), n) for n in (5, 9)]
              for _ in range(3)]
    start = [np.zeros((2, 3), np.float32)] * 2
    flower = FedAdam(initial_parameters=ndarrays_to_parameters(start), eta=0.01, eta_l=0.01,
                     tau=1e-3)
    ours, state = start, {}
    for r, results in enumerate(rounds, 1):
        fit = [(None, FitRes(status=Status(code=Code.OK, message=""),
                             parameters=ndarrays_to_parameters(w), num_examples=n,
                             metrics={})) for w, n in results]
        expected = parameters_to_ndarrays(flower.aggregate_fit(r, fit, [])[0])
        ours, state = aggregate("fedadam", ours, results, server_round=r, state=state)
        assert all(np.allclose(a, b) for a, b in zip(ours, expected)), r
    assert set(state) == {"m_t", "v_t"}


@pytest.mark.parametrize("name", ["fedavg", "fedprox", "fedavgm", "fedadam", "fedyogi",
                                  "fedadagrad", "fedmedian", "fedtrimmedavg", "krum"])
def test_every_strategy_aggregates_by_name(name):
    from kfp_interop.federated.strategies import aggregate

    results = [(weights(s), 10) for s in (1.0, 2.0, 3.0, 2.5)]
    new, _ = aggregate(name, weights(0), results, server_round=1)
    assert new[0].shape == (2, 3) and np.isfinite(new[0]).all()


def test_unknown_strategy_and_bad_options_are_named():
    from kfp_interop.federated.strategies import aggregate

    with pytest.raises(UnknownNameError, match="Unknown strategy 'fedsgd'.*'fedavg'"):
        aggregate("fedsgd", weights(0), [(weights(1), 1)], server_round=1)
    with pytest.raises(InvalidInputError, match="refuses options"):
        aggregate("fedavg", weights(0), [(weights(1), 1)], server_round=1,
                  options={"no_such_option": 1})


def test_differential_privacy_clips_adds_seeded_noise_and_reports_epsilon():
    from kfp_interop.federated.strategies import aggregate, epsilon

    results = [(weights(10.0), 10), (weights(-10.0), 10)]
    clipped, _ = aggregate("fedavg", weights(0), [(weights(10.0), 10)], server_round=1,
                           clip_norm=1.0)
    assert np.isclose(np.sqrt(sum((w ** 2).sum() for w in clipped)), 1.0, atol=1e-4)
    a, _ = aggregate("fedavg", weights(0), results, server_round=1, clip_norm=1.0,
                     noise_multiplier=1.0, seed=7)
    b, _ = aggregate("fedavg", weights(0), results, server_round=1, clip_norm=1.0,
                     noise_multiplier=1.0, seed=7)
    c, _ = aggregate("fedavg", weights(0), results, server_round=2, clip_norm=1.0,
                     noise_multiplier=1.0, seed=7)
    assert all((x == y).all() for x, y in zip(a, b))  # reproducible
    assert not all((x == y).all() for x, y in zip(a, c))  # fresh noise each round
    noise = np.concatenate([w.ravel() for w in a])  # the clipped updates cancel out
    assert 0.2 < noise.std() < 1.0  # std = 1.0 * 1.0 / 2 clients
    import dp_accounting

    accountant = dp_accounting.rdp.RdpAccountant()
    accountant.compose(dp_accounting.GaussianDpEvent(1.1), 5)
    assert epsilon(noise_multiplier=1.1, rounds=5, delta=1e-5) == pytest.approx(
        accountant.get_epsilon(1e-5))
    assert epsilon(noise_multiplier=0.0, rounds=5, delta=1e-5) is None


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    from kfp_interop.steps import federated_split_step

    d = tmp_path_factory.mktemp("fed")
    manifest = federated_split_step(dataset="digits", clients=3, partition="dirichlet",
                                    alpha=1.0, partitions_dir=str(d / "parts"),
                                    train_path=str(d / "train.parquet"),
                                    test_path=str(d / "test.parquet"))
    return d, manifest


def test_the_split_refuses_a_file_changed_after_its_fingerprint(tmp_path):
    """The split is cached by its parameters; the fingerprint (never cached) makes the key
    follow the file's content, and a file changed in between is refused, not split."""
    import pandas as pd

    from kfp_interop.data import source_fingerprint
    from kfp_interop.errors import DatasetError
    from kfp_interop.steps import federated_split_step

    csv = tmp_path / "rows.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60),
                  "y": [0, 1, 2] * 20}).to_csv(csv, index=False)
    seen = source_fingerprint(str(csv))
    paths = dict(partitions_dir=str(tmp_path / "p"), train_path=str(tmp_path / "tr"),
                 test_path=str(tmp_path / "te"))
    out = federated_split_step(dataset=str(csv), target_column="y", clients=2,
                               partition="iid", source_fingerprint=seen, **paths)
    assert sum(out["rows"]) == 45
    with open(csv, "a") as f:
        f.write("9.0,9.0,1\n")
    paths = {k: v + "2" for k, v in paths.items()}
    with pytest.raises(DatasetError, match="changed after it was fingerprinted"):
        federated_split_step(dataset=str(csv), target_column="y", clients=2, partition="iid",
                             source_fingerprint=seen, **paths)
    assert not any(os.path.exists(p) for p in paths.values())


def test_a_client_step_reads_its_rows_and_writes_only_weights(split, tmp_path):
    from kfp_interop.federated.models import load_weights
    from kfp_interop.steps import federated_client_step, federated_init_step

    d, manifest = split
    assert sum(manifest["rows"]) == 1347 and len(manifest["rows"]) == 3
    assert sorted(os.listdir(d / "parts")) == ["client-000.parquet", "client-001.parquet",
                                               "client-002.parquet", "clients.json"]
    federated_init_step(train_path=str(d / "train.parquet"), architecture="mlp",
                        out_dir=str(tmp_path / "g0"))
    facts = federated_client_step(partitions_dir=str(d / "parts"), client=1,
                        global_dir=str(tmp_path / "g0"), server_round=1,
                        out_dir=str(tmp_path / "c1"))
    assert facts["n_examples"] == manifest["rows"][1]
    # what leaves the step: arrays shaped like the model's weights, and a count
    assert sorted(os.listdir(tmp_path / "c1")) == ["spec.json", "weights.npz"]
    spec, client_weights, meta = load_weights(str(tmp_path / "c1"))
    assert [tuple(w.shape) for w in client_weights] == [tuple(s) for s in spec.shapes]
    assert set(meta) == {"client", "round", "n_examples", "metrics"}
    again = federated_client_step(partitions_dir=str(d / "parts"), client=1,
                        global_dir=str(tmp_path / "g0"), server_round=1,
                        out_dir=str(tmp_path / "c1b"))
    assert again == facts  # seeded per client and round


def test_a_client_step_starts_lean(split, tmp_path):
    """A client step, in a fresh interpreter, imports what training on its rows needs
    (torch, the Parquet reader) and nothing of export, serving, registry, storage or
    aggregation: every client of every round pays its start-up."""
    from kfp_interop.steps import federated_init_step

    d, _ = split
    federated_init_step(train_path=str(d / "train.parquet"), architecture="mlp",
                        out_dir=str(tmp_path / "g0"))
    code = ("import sys; from kfp_interop.steps import federated_client_step; "
            f"federated_client_step(partitions_dir={str(d / 'parts')!r}, client=0, "
            f"global_dir={str(tmp_path / 'g0')!r}, server_round=1, "
            f"out_dir={str(tmp_path / 'c0')!r}); "
            "print(sorted(m for m in ('onnx', 'onnxruntime', 'skl2onnx', 'mlflow', 'minio', "
            "'flwr', 'dp_accounting', 'keras', 'tensorflow', 'xgboost', 'lightgbm', 'sklearn', "
            "'kubernetes', 'uvicorn', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1]
    assert out == "['torch']"


def test_the_baselines_pooled_and_each_client_alone(tmp_path):
    """Under strong label skew (alpha 0.1) a client alone sees few digits: every local-
    only model is far below the same model on the pooled rows, and below what four
    rounds of FedAvg reach, on the same test rows. That gap is what federation is for."""
    from kfp_interop.steps import (federated_aggregate_step, federated_centralized_step, federated_client_step,
                                   federated_init_step, federated_split_step)

    d = tmp_path
    federated_split_step(dataset="digits", clients=3, partition="dirichlet", alpha=0.1,
                         partitions_dir=str(d / "parts"), train_path=str(d / "train"),
                         test_path=str(d / "test"))
    federated_init_step(train_path=str(d / "train"), architecture="mlp",
                        out_dir=str(d / "g0"))
    for r in range(1, 5):
        for c in range(3):
            federated_client_step(partitions_dir=str(d / "parts"), client=c, global_dir=str(d / f"g{r-1}"),
                        server_round=r, out_dir=str(d / f"r{r}c{c}"))
        row = federated_aggregate_step(global_dir=str(d / f"g{r-1}"), server_round=r,
                             client_dirs=[str(d / f"r{r}c{c}") for c in range(3)],
                             test_path=str(d / "test"), out_dir=str(d / f"g{r}"))
    base = federated_centralized_step(train_path=str(d / "train"), test_path=str(d / "test"),
                            architecture="mlp", epochs=8, partitions_dir=str(d / "parts"),
                            out_dir=str(d / "central"))
    local = base["local_accuracy"]
    assert len(local) == 3 and base["local_accuracy_max"] == max(local)
    assert max(local) < base["centralized_accuracy"] - 0.2
    assert row["accuracy"] > base["local_accuracy_mean"]
    without = federated_centralized_step(train_path=str(d / "train"), test_path=str(d / "test"),
                               architecture="mlp", epochs=8, out_dir=str(d / "c2"))
    assert "local_accuracy" not in without  # no partitions: the pooled baseline only
    assert without["centralized_accuracy"] == base["centralized_accuracy"]
    # what reaches the report and the model card is checked there too
    from kfp_interop.steps import federated_finalize_step

    args = dict(global_dir=str(d / "g4"), partitions_dir=str(d / "parts"),
                train_path=str(d / "train"), test_path=str(d / "test"),
                centralized_dir=str(d / "central"), model_dir=str(d / "final"),
                report_path=str(d / "report.html"))
    with pytest.raises(UnknownNameError, match="Unknown strategy '<img"):
        federated_finalize_step(strategy="<img src=x onerror=alert(1)>", **args)
    with pytest.raises(InvalidInputError, match="must be a number"):
        federated_finalize_step(strategy="fedprox", strategy_options='{"proximal_mu": "<b>"}', **args)
    assert not (d / "final").exists() and not (d / "report.html").exists()
    meta, _ = federated_finalize_step(strategy="fedavg", **args)
    assert meta.federated["local_accuracy"] == local


def test_clients_that_do_not_share_an_architecture_are_refused(split, tmp_path):
    from kfp_interop.steps import federated_aggregate_step, federated_client_step, federated_init_step

    d, _ = split
    for arch in ("mlp", "cnn"):
        federated_init_step(train_path=str(d / "train.parquet"), architecture=arch,
                            out_dir=str(tmp_path / arch))
        federated_client_step(partitions_dir=str(d / "parts"), client=0, global_dir=str(tmp_path / arch),
                    server_round=1, out_dir=str(tmp_path / f"client-{arch}"))
    with pytest.raises(InvalidInputError, match="trained 'cnn', the global model is 'mlp'.*"
                                                "do not share an architecture"):
        federated_aggregate_step(global_dir=str(tmp_path / "mlp"),
                       client_dirs=[str(tmp_path / "client-mlp"), str(tmp_path / "client-cnn")],
                       server_round=1, test_path=str(d / "test.parquet"),
                       out_dir=str(tmp_path / "next"))
    assert not (tmp_path / "next").exists()


def run_cli(*args, timeout=900):
    base = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([sys.executable, "-m", "kfp_interop.cli", *args],
                          capture_output=True, text=True, timeout=timeout, env=base)


def test_federated_pipeline_runs_locally_with_its_baseline(tmp_path):
    """Two rounds of three clients (rounds and clients set at compile time) with the
    linear model and FedAvg-with-DP: per-round metrics, the baseline, the report, the
    summary, the record's provenance, and the served model's smoke test."""
    out = tmp_path / "out"
    proc = run_cli("run", "federated-learning", "--local", "--output-dir", str(out),
                   "--param", "rounds=2", "--param", "clients=3", "--param",
                   "architecture=logistic", "--param", "optimizer=sgd", "--param",
                   "dp_clip_norm=5.0", "--param", "dp_noise_multiplier=0.1",
                   "--param", "register=false")
    assert proc.returncode == 0, proc.stdout[-3000:]
    s = json.loads((out / "summary.json").read_text())
    assert (s["rounds"], s["clients"], s["strategy"], s["alpha"]) == (2, 3, "fedavg", 1.0)
    assert 0 < s["metrics"]["federated_accuracy"] <= 1
    assert 0.8 < s["metrics"]["centralized_accuracy"] <= 1
    assert s["smoke_test"]["passed"] and s["parity"]["passed"]
    clients = [t for t in s["tasks"] if t.endswith("federated-client") or "/federated-client"
               in t]
    assert len(clients) == 6 and set(s["tasks"].values()) == {"succeeded"}
    from kfp_interop.metadata import load_metadata

    fed = load_metadata(str(out / "model.onnx")).federated
    assert fed["rounds"] == 2 and fed["clients"] == 3 and len(fed["client_samples"]) == 3
    assert fed["dp"]["clip_norm"] == 5.0 and fed["dp"]["epsilon"] > 0
    assert fed["dp"]["accountant"] == "dp_accounting RDP"
    html = open(os.path.join(s["run_dir"], "federated-finalize", "report")).read()
    assert "<svg" in html and "centralized" in html and "epsilon" in html
    # the other baseline: each client alone, in the metrics, the record and the report
    assert len(fed["local_accuracy"]) == 3
    m = s["metrics"]
    assert m["local_accuracy_min"] <= m["local_accuracy_mean"] <= m["local_accuracy_max"]
    assert m["local_accuracy_mean"] == pytest.approx(sum(fed["local_accuracy"]) / 3)
    assert "each client alone" in html
    card = open(os.path.join(s["run_dir"], "attach-metadata", "model_card")).read()
    assert "## Federated training" in card and "| rounds x clients | 2 x 3 |" in card
    assert "clip norm 5, noise multiplier 0.1, epsilon" in card


def test_graph_parameters_are_checked(tmp_path):
    for bad, message in ((["rounds=0"], "rounds=0 must be an integer of at least 1"),
                         (["clients=two"], "clients='two' is not a valid int")):
        proc = run_cli("run", "federated-learning", "--local", "--output-dir",
                       str(tmp_path / "x"), *[a for p in bad for a in ("--param", p)])
        assert proc.returncode == 2 and message in proc.stderr
        assert not (tmp_path / "x" / "summary.json").exists()
    # the server's settings stop the run before any client trains
    proc = run_cli("run", "federated-learning", "--local", "--output-dir", str(tmp_path / "y"),
                   "--param", "strategy=fedsgd", "--param", "register=false")
    s = json.loads((tmp_path / "y" / "summary.json").read_text())
    assert proc.returncode == 1 and s["failed_task"] == "federated-init"
    assert "Unknown strategy 'fedsgd'" in s["error"] and "'fedavg'" in s["error"]
    assert not any("client" in t for t in s["tasks"])
    proc = run_cli("compile", "tabular", "-o", str(tmp_path / "t.yaml"), "--param", "rounds=3")
    assert proc.returncode == 2 and "rounds" in proc.stderr
