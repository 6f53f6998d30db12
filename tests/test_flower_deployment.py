"""Federated learning on Flower's Deployment Engine, for real on one machine: a SuperLink
and SuperNodes as separate processes (kfp-interop federation up), our Flower App run on
them by the pipeline's task, the global model back into the pipeline (exported, served,
smoke-tested), the rows never outside their node's folder, accuracy as the simulation's
on the same partitions, dropouts and failures named."""

import glob
import json
import os
import subprocess
import threading
import time

import numpy as np
import pytest
from test_pipeline import run_cli

from kfp_interop.errors import (FederationError, FederationUnavailableError,
                                InvalidInputError, UnknownNameError)
from kfp_interop.flower import local_federation
from kfp_interop.flower.deployment import (FlowerSettings, SuperLink, flower_environment,
                                           flower_executable)
from kfp_interop.serving.process import free_port

pytest.importorskip("flwr")

ROUNDS = 3


@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    """Three SuperNodes on digits, Dirichlet(1.0), seed 42: the simulation's defaults."""
    root = str(tmp_path_factory.mktemp("federation"))
    proc = run_cli("federation", "up", "--nodes", "3", "--dir", root, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "--param superlink=127.0.0.1:" in proc.stdout
    with open(os.path.join(root, local_federation.STATE_FILE)) as f:
        state = json.load(f)
    yield root, state
    run_cli("federation", "down", "--dir", root)


def small_federation(root, nodes=3, **options):
    return local_federation.up(str(root), nodes=nodes, **options)


def flower_step(state, tmp_path, **options):
    from kfp_interop.steps.federated_deployment import federated_eval_step
    from kfp_interop.steps.federated_deployment import federated_flower_step

    os.makedirs(tmp_path, exist_ok=True)
    test = str(tmp_path / "test.parquet")
    federated_eval_step(dataset=state["eval_data"], target_column=state["target_column"],
                        test_path=test)
    settings = dict(superlink=state["superlink"], superlink_insecure=True,
                    federation_results=state["results"], rounds=2, clients=3)
    settings.update(options)
    return federated_flower_step(test_path=test, model_dir=str(tmp_path / "model"),
                                 report_path=str(tmp_path / "report.html"), **settings)


def _rows(values) -> set:
    return {tuple(np.round(np.asarray(r, dtype=np.float64), 6)) for r in values}


def _arrays_in(path, width):
    """Every 2-D block of ``width`` columns a file holds (Parquet tables, NumPy arrays,
    JSON lists of rows, the ONNX file's metadata JSON)."""
    import pyarrow.parquet as pq

    def from_json(obj):
        if isinstance(obj, list) and obj and all(isinstance(r, list) and len(r) == width
                                                 for r in obj):
            yield obj
        elif isinstance(obj, list):
            for item in obj:
                yield from from_json(item)
        elif isinstance(obj, dict):
            for item in obj.values():
                yield from from_json(item)
        elif isinstance(obj, str) and obj[:1] in "[{":
            try:
                yield from from_json(json.loads(obj))
            except ValueError:
                pass

    if path.endswith(".parquet") or open(path, "rb").read(4) == b"PAR1":
        table = pq.read_table(path).to_pandas()
        numeric = table.select_dtypes("number")
        if numeric.shape[1] >= width:
            yield numeric.to_numpy()[:, :width]
        return
    data = open(path, "rb").read()
    if data[:6] == b"\x93NUMPY" or data[:2] == b"PK":
        try:
            loaded = np.load(path, allow_pickle=False)
            items = [loaded[k] for k in loaded.files] if hasattr(loaded, "files") else [loaded]
            yield from (a for a in items if isinstance(a, np.ndarray) and a.ndim == 2
                        and a.shape[1] == width)
        except (ValueError, OSError, EOFError, KeyError):  # a zip that is not NumPy's
            pass
        return
    if path.endswith(".onnx"):
        import onnx

        for prop in onnx.load(path).metadata_props:
            yield from from_json(prop.value)
        return
    try:
        yield from from_json(json.loads(data))
    except ValueError:
        pass


def test_deployment_pipeline_serves_the_global_model_and_rows_stay_home(federation,
                                                                        tmp_path):
    """The pipeline with engine=deployment under kfp.local: exported, served and
    smoke-tested; the record's federated block; no node's rows anywhere outside its own
    folder; the final accuracy within one point of the simulation engine's on the same
    partitions, seed and test rows."""
    root, state = federation
    out = tmp_path / "out"
    proc = run_cli("run", "federated-learning", "--local", "--output-dir", str(out),
               "--param", "engine=deployment", "--param", f"rounds={ROUNDS}",
               "--param", "clients=3", "--param", f"superlink={state['superlink']}",
               "--param", "superlink_insecure=true",
               "--param", f"federation_results={state['results']}",
               "--param", f"dataset={state['eval_data']}",
               "--param", f"target_column={state['target_column']}",
               "--param", "register=false")
    assert proc.returncode == 0, proc.stdout[-3000:]
    s = json.loads((out / "summary.json").read_text())
    assert s["smoke_test"]["passed"] and s["parity"]["passed"]
    assert not any("federated-client" in t for t in s["tasks"])  # no client steps
    log = (out / "run.log").read_text()
    for r in range(1, ROUNDS + 1):
        assert f"round {r}/{ROUNDS}: 3 node(s)" in log
    from kfp_interop.metadata import load_metadata

    fed = load_metadata(str(out / "model.onnx")).federated
    assert fed["engine"] == "deployment" and fed["superlink"] == state["superlink"]
    assert fed["rounds"] == ROUNDS and fed["clients"] == 3
    assert sorted(fed["client_samples"]) == sorted(n["rows"] for n in state["nodes"])
    assert all(n["rounds"] == ROUNDS for n in fed["nodes"])
    assert os.path.isdir(os.path.join(state["results"], f"run-{fed['run_id']}"))

    # no node's rows outside its folder: the run's artifacts, its output, the ServerApp's
    # results, the SuperLink's folder; the evaluation rows (the pipeline's own) are found
    # there, which shows the search can see rows at all
    import pandas as pd

    evaluation = pd.read_parquet(state["eval_data"]).drop(columns=[state["target_column"]])
    width = evaluation.shape[1]
    eval_rows = _rows(evaluation.to_numpy())
    node_rows = set()
    for node in state["nodes"]:
        rows = pd.read_parquet(node["data_path"]).drop(columns=[state["target_column"]])
        node_rows |= _rows(rows.to_numpy())
    node_rows -= eval_rows  # identical images in both splits are not a leak
    places = [str(out), s["run_dir"], state["results"], os.path.join(root, "superlink")]
    seen_eval = leaked = 0
    for place in places:
        for path in glob.glob(os.path.join(place, "**", "*"), recursive=True):
            if not os.path.isfile(path):
                continue
            for block in _arrays_in(path, width):
                found = _rows(block)
                seen_eval += len(found & eval_rows)
                leaked += len(found & node_rows)
    assert seen_eval > 0 and leaked == 0

    # the simulation engine on the same partitions, seed and test rows
    sim = simulate(tmp_path / "sim", rounds=ROUNDS, clients=3)
    assert abs(s["metrics"]["federated_accuracy"] - sim) <= 0.01, (
        s["metrics"]["federated_accuracy"], sim)


def simulate(tmp_path, *, rounds, clients):
    """The simulation engine's stages (what its pipeline tasks call) on the defaults."""
    from kfp_interop.steps import (federated_aggregate_step, federated_client_step,
                                   federated_init_step, federated_split_step)

    os.makedirs(tmp_path, exist_ok=True)
    parts, train, test = (str(tmp_path / n) for n in ("parts", "train.pq", "test.pq"))
    federated_split_step(dataset="digits", clients=clients, partitions_dir=parts,
                         train_path=train, test_path=test)
    current = str(tmp_path / "g0")
    federated_init_step(train_path=train, out_dir=current)
    for r in range(1, rounds + 1):
        outs = []
        for c in range(clients):
            outs.append(str(tmp_path / f"c{r}-{c}"))
            federated_client_step(partitions_dir=parts, client=c, global_dir=current,
                                  server_round=r, out_dir=outs[-1])
        nxt = str(tmp_path / f"g{r}")
        row = federated_aggregate_step(global_dir=current, client_dirs=outs, server_round=r,
                                       test_path=test, out_dir=nxt)
        current = nxt
    return row["accuracy"]


def _stop_after_round(state, node, after_round=1):
    """Stop SuperNode ``node`` once a run in the federation finished ``after_round``."""
    before = set(glob.glob(os.path.join(state["results"], "run-*")))

    def watch():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            for run in set(glob.glob(os.path.join(state["results"], "run-*"))) - before:
                try:
                    with open(os.path.join(run, "progress.json")) as f:
                        if len(json.load(f)["history"]) >= after_round:
                            local_federation.down(state["root"], node=node)
                            return
                except (OSError, ValueError):
                    pass
            time.sleep(0.2)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("min_fit, goes_on", [(2, True), (3, False)])
def test_a_node_that_drops_out(tmp_path, min_fit, goes_on):
    """A SuperNode stopped after round 1: with the strategy's min_fit_clients=2 the run
    goes on with the other two; with 3 it stops with a named error."""
    state = small_federation(tmp_path / "fed")
    state["root"] = str(tmp_path / "fed")
    try:
        watcher = _stop_after_round(state, node=2)
        options = {"rounds": 3, "strategy_options": json.dumps({"min_fit_clients": min_fit}),
                   "round_timeout": 60.0}
        if goes_on:
            meta, _ = flower_step(state, tmp_path, **options)
            watcher.join(5)
            fed = meta.federated
            rounds = sorted(n["rounds"] for n in fed["nodes"])
            assert fed["rounds"] == 3 and rounds == [1, 3, 3]
        else:
            with pytest.raises(FederationError, match=r"Round 2: 2 SuperNode\(s\) answered.*"
                               r"min_fit_clients=3"):
                flower_step(state, tmp_path, **options)
    finally:
        local_federation.down(state["root"])


def test_a_node_without_its_data_fails_the_run_naming_it(tmp_path):
    """A SuperNode started without node config data-path: the run fails with the
    ServerApp's error naming that node, and no model is written."""
    state = small_federation(tmp_path / "fed", nodes=2)
    root = str(tmp_path / "fed")
    env = flower_environment(dict(os.environ))
    bare = subprocess.Popen([flower_executable("flower-supernode"),
                             "--insecure", "--superlink", state["superlink"], "--host",
                             "127.0.0.1", "--port", str(free_port()),
                             "--isolation", "subprocess"], cwd=str(tmp_path), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        with pytest.raises(FederationError, match=r"the ClientApp on SuperNode \d+ failed.*"
                           r"SuperNode \d+ has no node config 'data-path'"):
            flower_step(state, tmp_path, rounds=1, clients=3, node_wait_timeout=60.0)
        assert not os.path.exists(tmp_path / "model" / "model_meta.json")
    finally:
        bare.terminate()
        bare.wait(30)
        local_federation.down(root)


def test_an_unreachable_superlink_is_named(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    state = {"superlink": address, "results": str(tmp_path / "results"),
             "eval_data": "digits", "target_column": ""}
    with pytest.raises(FederationUnavailableError, match=f"SuperLink {address} cannot be "
                       "reached"):
        flower_step(state, tmp_path)
    with pytest.raises(InvalidInputError, match="must be host:port"):
        SuperLink("http://superlink", insecure=True)
    with pytest.raises(InvalidInputError, match="kfp-interop-superlink-tls"):
        SuperLink("superlink.flower.svc:9093")


def test_bad_settings_stop_before_any_run(tmp_path):
    """Rounds or clients below one, an unknown strategy or an architecture nobody
    federates are refused before the SuperLink is asked anything (the address is never
    dialled: it does not exist)."""
    state = {"superlink": "127.0.0.1:1", "results": str(tmp_path / "results"),
             "eval_data": "digits", "target_column": ""}
    for options, error, match in (({"rounds": 0}, InvalidInputError, "rounds=0"),
                                  ({"clients": 0}, InvalidInputError, "clients=0"),
                                  ({"strategy": "fedsgd"}, UnknownNameError, "fedsgd"),
                                  ({"architecture": "resnet"}, InvalidInputError,
                                   "No framework federates architecture 'resnet'"),
                                  ({"architecture": "os:system"}, InvalidInputError,
                                   "os:system")):
        with pytest.raises(error, match=match):
            flower_step(state, tmp_path, **options)
    with pytest.raises(InvalidInputError, match="federation_results is empty"):
        flower_step({**state, "results": ""}, tmp_path)


def test_run_config_is_read_back_as_data():
    settings = FlowerSettings(architecture="mlp", feature_names=("a", "b"),
                              class_labels=("x", "y"), rounds=2, clients=2,
                              strategy_options={"min_fit_clients": 1})
    config = settings.to_run_config()
    assert FlowerSettings.from_run_config(config) == settings
    for key, value, match in (("rounds", "2; rm -rf /", "rounds"),
                              ("feature-names", "{'a': 1}", "not JSON"),
                              ("strategy", "__import__('os')", "Unknown strategy")):
        with pytest.raises(InvalidInputError, match=match):
            FlowerSettings.from_run_config({**config, key: value})
    with pytest.raises(InvalidInputError, match="lacks 'architecture'"):
        FlowerSettings.from_run_config({k: v for k, v in config.items()
                                        if k != "architecture"})


def test_federation_down_without_federation_is_bad_input(tmp_path):
    proc = run_cli("federation", "down", "--dir", str(tmp_path))
    assert proc.returncode == 2 and "No federation is up" in proc.stderr
    proc = run_cli("federation", "up", "--nodes", "0", "--dir", str(tmp_path))
    assert proc.returncode == 2 and "nodes=0" in proc.stderr


def test_tls_and_results_in_object_storage(s3_env, monkeypatch, tmp_path):
    """The cluster shape on one machine: the SuperLink serves TLS (a throwaway CA signs
    it; the nodes and the task check it, the task's CA from KFP_INTEROP_SUPERLINK_CA as
    the Secret puts it), and the ServerApp writes the results to S3 with its own
    credentials, where the task reads them. A task without the right CA is refused by
    the TLS handshake, named."""
    from kfp_interop.storage import open_store

    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    open_store("s3://federation").prepare(create_bucket=True)
    results = "s3://federation/runs"
    state = small_federation(tmp_path / "fed", nodes=2, tls=True, results=results)
    try:
        assert state["tls"] and state["results"] == results
        with pytest.raises(InvalidInputError, match="kfp-interop-superlink-tls"):
            flower_step(state, tmp_path / "a", rounds=1, clients=2, superlink_insecure=False)
        monkeypatch.setenv("KFP_INTEROP_SUPERLINK_CA", open(state["ca_certificate"]).read())
        meta, _ = flower_step(state, tmp_path / "b", rounds=1, clients=2,
                              superlink_insecure=False)
        fed = meta.federated
        assert fed["engine"] == "deployment" and fed["clients"] == 2
        keys = open_store("s3://federation").list_keys("runs/")
        assert f"runs/run-{fed['run_id']}/model/weights.npz" in keys
        assert not glob.glob(str(tmp_path / "fed" / "results" / "*"))
        # another CA: the handshake fails and the task says so
        from kfp_interop.flower.local_federation import _make_tls

        other = _make_tls(str(tmp_path / "other-ca"))
        monkeypatch.setenv("KFP_INTEROP_SUPERLINK_CA", open(other["ca"]).read())
        with pytest.raises(FederationUnavailableError, match="TLS connection failed.*"
                           "KFP_INTEROP_SUPERLINK_CA"):
            flower_step(state, tmp_path / "c", rounds=1, clients=2, superlink_insecure=False)
    finally:
        local_federation.down(str(tmp_path / "fed"))


def test_fewer_nodes_than_clients_stop_the_run(tmp_path):
    """clients=2 on a federation of one node: the ServerApp gives up after
    node_wait_timeout (Flower itself would wait forever) and says how many came."""
    state = small_federation(tmp_path / "fed", nodes=1)
    try:
        with pytest.raises(FederationError, match=r"Only 1 of the 2 SuperNode\(s\) the run "
                           r"needs \(clients=2\) connected within 3 s"):
            flower_step(state, tmp_path, rounds=1, clients=2, node_wait_timeout=3.0)
    finally:
        local_federation.down(str(tmp_path / "fed"))


def test_the_round_loop_reads_answers_as_data(monkeypatch):
    """The ServerApp's handling of each answer, on Flower's own records: a node gone
    (Flower's NODE_UNAVAILABLE) has dropped out; a ClientApp error or an answer without
    weights and a positive example count fails the round naming the node."""
    from types import SimpleNamespace

    from flwr.app import ArrayRecord, MetricRecord, RecordDict

    from flwr.supercore.task_identity import TaskIdentity

    from kfp_interop.flower.app import _train_round

    for attr in ("_run_id", "_node_id", "_task_id"):  # messages are made inside a run
        monkeypatch.setattr(TaskIdentity, attr, 1)
    settings = FlowerSettings(architecture="logistic", feature_names=("a", "b"),
                              class_labels=("x", "y"), rounds=1, clients=3)
    weights = [np.zeros((1, 2)), np.zeros(1)]

    def reply(node, content=None, error=None):
        return SimpleNamespace(metadata=SimpleNamespace(src_node_id=node),
                               has_error=lambda: error is not None, error=error,
                               content=content)

    def grid(*replies):
        return SimpleNamespace(get_node_ids=lambda: [1, 2, 3],
                               send_and_receive=lambda messages, timeout: list(replies))

    good = RecordDict({"arrays": ArrayRecord(weights),
                       "metrics": MetricRecord({"num-examples": 5, "loss": 0.5})})
    results, facts, dropped = _train_round(
        grid(reply(1, good), reply(2, error=SimpleNamespace(code=5, reason="gone"))),
        settings, weights, 1, set())
    assert [f["node_id"] for f in facts] == [1] and dropped == [2, 3]
    assert facts[0]["samples"] == 5 and len(results) == 1
    with pytest.raises(FederationError, match="SuperNode 2 failed: boom"):
        _train_round(grid(reply(1, good), reply(2, error=SimpleNamespace(code=2,
                                                                         reason="boom"))),
                     settings, weights, 1, set())
    for bad in (RecordDict({"arrays": ArrayRecord(weights), "metrics": MetricRecord({})}),
                RecordDict({"arrays": ArrayRecord(weights),
                            "metrics": MetricRecord({"num-examples": 0})}),
                RecordDict({"metrics": MetricRecord({"num-examples": 3})}),
                RecordDict({"arrays": ArrayRecord([np.full((1, 2), np.nan), np.zeros(1)]),
                            "metrics": MetricRecord({"num-examples": 3})}),
                RecordDict({"arrays": ArrayRecord(weights),
                            "metrics": MetricRecord({"num-examples": 3, "loss": [1.0, 2.0]})})):
        with pytest.raises(FederationError, match="SuperNode 3 answered without finite weights"):
            _train_round(grid(reply(1, good), reply(3, bad)), settings, weights, 1, set())


def test_an_architecture_the_serverapp_does_not_allow_fails_the_run_on_the_server(
        monkeypatch, tmp_path):
    """The task may allow a module:Class that the SuperLink side does not: the ServerApp
    refuses it before any node trains, and the task fails with the ServerApp's message
    (Flower's run status: failed)."""
    monkeypatch.delenv("KFP_INTEROP_ALLOWED_MODULES", raising=False)
    state = small_federation(tmp_path / "fed", nodes=1)  # its processes allow no extra module
    try:
        monkeypatch.setenv("KFP_INTEROP_ALLOWED_MODULES", "deep_models")
        with pytest.raises(FederationError, match=r"ended finished:failed.*module "
                           r"'deep_models' is not allowed"):
            flower_step(state, tmp_path, rounds=1, clients=1,
                        architecture="deep_models:TinyNet")
        assert not os.path.exists(tmp_path / "model" / "model_meta.json")
    finally:
        local_federation.down(str(tmp_path / "fed"))
