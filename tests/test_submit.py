"""`kfp-interop submit`: compile and start a run through the unchanged kfp.Client against
an HTTP fake of the Kubeflow Pipelines v2beta1 API. What arrives is the compiled
pipeline with typed parameters; tokens come from files, never arguments; unreachable
hosts, refused credentials, unknown experiments and failed runs are typed errors."""

import json
import os
import socket

import pytest
import yaml
from google.protobuf import json_format
from kfpfake import FakePipelines

from kfp_interop.cli import main
from kfp_interop.runs.cluster import resolve_token, submit
from kfp_interop.errors import (PipelineRunError, PipelinesAuthError,
                                PipelinesUnavailableError, UnknownNameError)

TOKEN = "s3cr3t-token-value"
TASKS = ["check-settings", "fingerprint-data", "load-data", "train", "export-onnx"]


@pytest.fixture
def fake():
    api = FakePipelines(script=[
        ("RUNNING", {"check-settings": "SUCCEEDED", "load-data": "RUNNING"}),
        ("RUNNING", {"check-settings": "SUCCEEDED", "load-data": "SUCCEEDED",
                     "train": "RUNNING"}),
        ("SUCCEEDED", {t: "SUCCEEDED" for t in TASKS})])
    yield api
    api.close()


@pytest.fixture(autouse=True)
def no_ambient_credentials(monkeypatch, tmp_path):
    monkeypatch.delenv("KF_PIPELINES_SA_TOKEN_PATH", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))  # kfp.Client reads ~/.config/kfp


def compiled(name, tmp_path, **options):
    from kfp_interop.pipelines import compile_pipeline

    path = compile_pipeline(name, str(tmp_path / f"{name}.yaml"), **options)
    spec, platform = yaml.safe_load_all(open(path))
    return spec, platform


def proto_json(doc):
    """A document as the API receives it (through the protobuf JSON mapping)."""
    from kfp.pipeline_spec import pipeline_spec_pb2

    return json_format.MessageToDict(json_format.ParseDict(doc, pipeline_spec_pb2.PipelineSpec()))


def test_submit_sends_the_compiled_pipeline_and_typed_parameters(fake, tmp_path, capsys):
    code = main(["submit", "tabular", "--host", fake.url, "--param", "dataset=wine",
                 "--param", "seed=7", "--param", "scaler=true", "--param",
                 "parity_tolerance=0.001", "--run-name", "wine-rf", "--wait"])
    out = capsys.readouterr().out
    assert code == 0, out
    run = next(iter(fake.runs.values()))
    url = f"{fake.url}/#/runs/details/{run['run_id']}"
    assert url in out and f"Run {run['run_id']} SUCCEEDED" in out
    result = json.loads(out[out.index("{\n"):])
    assert result["state"] == "SUCCEEDED" and result["tasks"]["train"] == "SUCCEEDED"
    # the printed task states follow the run as it went
    assert out.index("load-data                    RUNNING") < out.index(
        "load-data                    SUCCEEDED")
    spec, platform = compiled("tabular", tmp_path)
    assert run["pipeline_spec"]["pipeline_spec"] == proto_json(spec)
    assert run["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"] == \
        platform["platforms"]["kubernetes"]
    assert run["runtime_config"]["parameters"] == {"dataset": "wine", "seed": 7,
                                                   "scaler": True, "parity_tolerance": 0.001}
    assert run["display_name"] == "wine-rf"
    experiment = fake.experiments[run["experiment_id"]]
    assert experiment["display_name"] == "kfp-interop"  # created when missing
    assert not any(r["authorized"] for r in fake.requests)  # no token anywhere: none sent


def test_tokens_come_from_files_and_never_show(tmp_path, monkeypatch, capsys):
    api = FakePipelines(token=TOKEN, forbidden="an-old-token")
    try:
        with pytest.raises(PipelinesAuthError, match="401.*--token-file"):
            submit("tabular", {}, host=api.url)
        token_file = tmp_path / "token"
        token_file.write_text(TOKEN + "\n")
        assert main(["submit", "tabular", "--host", api.url, "--token-file",
                     str(token_file)]) == 0
        assert "with the token from --token-file" in capsys.readouterr().out
        # the service-account token path KFP's own tooling uses
        monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(token_file))
        assert submit("tabular", {}, host=api.url)["run_id"] in api.runs
        monkeypatch.delenv("KF_PIPELINES_SA_TOKEN_PATH")
        # an existing kube config's user token
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "current-context": "kf", "contexts": [{"name": "kf", "context": {"user": "me"}}],
            "users": [{"name": "me", "user": {"token": TOKEN}}]}))
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        assert resolve_token() == (TOKEN, "kube config")
        assert submit("tabular", {}, host=api.url)["run_id"] in api.runs
        old = tmp_path / "old"
        old.write_text("an-old-token")
        with pytest.raises(PipelinesAuthError, match="403"):
            submit("tabular", {}, host=api.url, token_file=str(old))
        # there is no way to pass a token itself
        with pytest.raises(SystemExit):
            main(["submit", "tabular", "--host", api.url, "--token", TOKEN])
        captured = capsys.readouterr()
        assert TOKEN not in captured.out + captured.err
        assert len(api.runs) == 3
    finally:
        api.close()


def test_unreachable_host_unknown_experiment_and_a_failed_run(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PipelinesUnavailableError, match=f"127.0.0.1:{port} cannot be reached"):
        submit("tabular", {}, host=f"http://127.0.0.1:{port}")
    api = FakePipelines(experiments=["nightly"], script=[
        ("RUNNING", {"check-settings": "RUNNING"}),
        ("FAILED", {"check-settings": "SUCCEEDED", "smoke-test": "FAILED"})])
    try:
        with pytest.raises(UnknownNameError, match="Experiment 'weekly' does not exist"):
            submit("tabular", {}, host=api.url, experiment="weekly")
        assert not api.runs and len(api.experiments) == 1  # nothing created
        with pytest.raises(PipelineRunError, match="ended FAILED .*smoke-test.*task "
                                                   "smoke-test failed") as info:
            submit("tabular", {}, host=api.url, experiment="nightly", wait=True, poll=0.01,
                   log=lambda line: None)
        assert info.value.run["tasks"]["smoke-test"] == "FAILED"
        api.gets = 0
        assert main(["submit", "tabular", "--host", api.url, "--experiment", "nightly",
                     "--wait"]) == 1
        assert "smoke-test" in capsys.readouterr().err
        # a bad parameter is refused before anything is sent
        before = len(api.requests)
        assert main(["submit", "tabular", "--host", api.url, "--param", "seed=many"]) == 2
        assert len(api.requests) == before
    finally:
        api.close()


def test_submit_onnx_import_needs_its_parameter(tmp_path):
    api = FakePipelines()
    try:
        assert main(["submit", "onnx-import", "--host", api.url]) == 2
        assert main(["submit", "onnx-import", "--host", api.url, "--param",
                     "model_uri=s3://models/scorer.onnx"]) == 0
        run = next(iter(api.runs.values()))
        assert run["runtime_config"]["parameters"] == {"model_uri": "s3://models/scorer.onnx"}
    finally:
        api.close()
    assert os.environ.get("KF_PIPELINES_SA_TOKEN_PATH") is None


def _tasks(spec, prefix):
    """Task names starting with ``prefix`` anywhere in the compiled graph (loops are
    sub-DAGs in ``components``)."""
    found = list((spec["root"]["dag"]["tasks"]))
    for comp in spec["components"].values():
        found += list((comp.get("dag") or {}).get("tasks", {}))
    return sorted(t for t in found if t.startswith(prefix))


def test_graph_parameters_shape_what_compile_and_submit_send(fake, tmp_path, capsys):
    """rounds and clients are fixed at compile time: `compile --param rounds=3` and
    `submit --param rounds=3` both send a graph with three aggregations, the loops over
    the given clients, and no `rounds` run-time parameter; the rest stay run-time."""
    out = tmp_path / "fl.yaml"
    assert main(["compile", "federated-learning", "-o", str(out), "--param", "rounds=3",
                 "--param", "clients=2"]) == 0
    spec = next(yaml.safe_load_all(open(out)))
    assert _tasks(spec, "federated-aggregate") == ["federated-aggregate",
                                                   "federated-aggregate-2",
                                                   "federated-aggregate-3"]
    assert len(_tasks(spec, "for-loop")) == 3
    loops = [t for c in spec["root"]["dag"]["tasks"].values()
             if (t := c.get("parameterIterator"))]
    assert loops and all(json.loads(t["items"]["raw"]) == [0, 1] for t in loops)
    assert "rounds" not in spec["root"]["inputDefinitions"]["parameters"]
    default, _ = compiled("federated-learning", tmp_path)
    assert len(_tasks(default, "federated-aggregate")) == 5  # the default graph: 5 rounds

    code = main(["submit", "federated-learning", "--host", fake.url, "--param", "rounds=3",
                 "--param", "clients=2", "--param", "strategy=fedadam", "--wait"])
    assert code == 0, capsys.readouterr().out
    run = next(iter(fake.runs.values()))
    assert run["pipeline_spec"]["pipeline_spec"] == proto_json(spec)  # the 3 x 2 graph
    assert run["runtime_config"]["parameters"] == {"strategy": "fedadam"}
