"""kfp-interop's server as a KServe ServingRuntime, compute knobs and execution
providers: the runtime's container command serves a Triton-layout repository as KServe's
storage initializer lays it out; the kserve target chooses it or Triton; resources and
GPUs reach the manifests and the compiled tasks; ONNX Runtime's providers are selectable
and the parity gate records the one it ran on."""

import os
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

from kfp_interop.cli import main
from kfp_interop.errors import InvalidInputError, ManifestValidationError

S3 = "s3://models/repo"


def test_the_runtime_command_serves_the_repository_kserve_downloads(iris_onnx, tmp_path):
    """Run the ServingRuntime's container args (the {{.Name}} template filled as KServe
    fills it) against an uploaded Triton-layout repository standing in for /mnt/models."""
    from kfp_interop.deploy.kserve import serving_runtime
    from kfp_interop.serving.client import http_json
    from kfp_interop.serving.process import free_port
    from kfp_interop.storage import upload

    repo = tmp_path / "mnt-models"
    upload(iris_onnx, str(repo))
    upload(iris_onnx, str(repo), name="other")  # a repository with several models
    container = serving_runtime()["spec"]["containers"][0]
    port = free_port("127.0.0.1")
    args = [a.replace("{{.Name}}", "iris").replace("/mnt/models", str(repo))
            .replace("0.0.0.0", "127.0.0.1").replace("8080", str(port))
            for a in container["args"]]
    assert args[:2] == ["kfp-interop", "serve"]
    env = {**os.environ, **{e["name"]: e["value"] for e in container["env"]}}
    proc = subprocess.Popen([sys.executable, "-m", "kfp_interop.cli", *args[1:]], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                with urllib.request.urlopen(url + container["readinessProbe"]["httpGet"]
                                            ["path"], timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        status, meta = http_json("GET", url + "/v2/models/iris")
        assert status == 200
        assert meta["name"] == "iris" and meta["platform"] == "onnxruntime_onnx"
    finally:
        proc.terminate()
        proc.wait(10)


def test_locate_model_in_files_folders_and_repositories(iris_onnx, tmp_path):
    from kfp_interop.serving import locate_model
    from kfp_interop.storage import upload

    upload(iris_onnx, str(tmp_path / "repo"))
    v2 = tmp_path / "repo" / "iris" / "2"
    v2.mkdir()
    (v2 / "model.onnx").write_bytes(open(iris_onnx, "rb").read())
    assert locate_model(str(tmp_path / "repo"), "iris") == str(v2 / "model.onnx")
    assert locate_model(str(tmp_path / "repo" / "iris")) == str(v2 / "model.onnx")
    assert locate_model(iris_onnx) == iris_onnx
    assert locate_model(os.path.dirname(iris_onnx)) == iris_onnx
    with pytest.raises(InvalidInputError, match="No model.onnx in .*'iris'"):
        locate_model(str(tmp_path / "repo"), "wine")


def test_kserve_chooses_the_runtime_and_the_dry_run_shows_it(iris_onnx, tmp_path, capsys):
    for runtime, name in (("", "kserve-tritonserver"), ("kfp-interop", "kfp-interop-onnx")):
        out = tmp_path / (runtime or "triton")
        args = ["deploy", iris_onnx, "--target", "kserve", "--dry-run", "--storage-uri", S3,
                "--output-dir", str(out), "--cpu", "2", "--memory", "3Gi", "--gpus", "1"]
        assert main(args + (["--runtime", runtime] if runtime else [])) == 0
        manifest = yaml.safe_load(open(out / "kserve.yaml"))
        model = manifest["spec"]["predictor"]["model"]
        assert model["runtime"] == name
        assert model["resources"]["limits"] == {"cpu": "2", "memory": "3Gi",
                                                "nvidia.com/gpu": "1"}
    capsys.readouterr()
    with pytest.raises(ManifestValidationError, match="runtime 'Not_A_Name'"):
        from kfp_interop.deploy import render_manifest

        render_manifest("kserve", iris_onnx, storage_uri=S3, runtime="Not_A_Name")


def test_serving_resources_are_checked_before_anything_runs(iris_onnx, tmp_path):
    from kfp_interop.steps.release import serving_options

    with pytest.raises(InvalidInputError, match="the 'local' target runs a process here"):
        serving_options("local", cpu="2")
    with pytest.raises(InvalidInputError, match=r"Option\(s\) \['runtime'\] do not apply to "
                                                r"target 'seldon': it takes \['cpu', "):
        serving_options("seldon", runtime="kfp-interop")
    with pytest.raises(ManifestValidationError, match="memory='lots'"):
        serving_options("kserve", memory="lots")
    with pytest.raises(InvalidInputError, match="gpus=-1"):
        serving_options("kserve", gpus=-1)
    assert serving_options("seldon-v2", gpus=2) == {"gpus": 2}
    from kfp_interop.deploy import render_manifest

    _, m = render_manifest("seldon-v2", iris_onnx, storage_uri=S3 + "/iris", gpus=1)
    assert m["spec"]["requirements"] == ["onnx", "gpu"]
    _, m = render_manifest("seldon", iris_onnx, storage_uri=S3, gpus=1, memory="2Gi")
    container = m["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert main(["deploy", iris_onnx, "--target", "local", "--cpu", "2"]) == 2


def test_compile_options_set_the_training_tasks_resources(tmp_path):
    assert main(["compile", "transfer-learning", "-o", str(tmp_path / "t.yaml"), "--cpu", "4",
                 "--memory", "8Gi", "--accelerator", "nvidia.com/gpu:2"]) == 0
    spec = next(yaml.safe_load_all(open(tmp_path / "t.yaml")))
    executors = spec["deploymentSpec"]["executors"]
    heavy = {"exec-train-deep", "exec-train-deep-2", "exec-finetune", "exec-export-onnx",
             "exec-optimize"}
    for name, executor in executors.items():
        resources = executor["container"].get("resources")
        if name in heavy:
            assert resources["resourceCpuLimit"] == "4" == resources["resourceCpuRequest"]
            assert resources["resourceMemoryLimit"] == "8Gi"
            assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
            assert resources["accelerator"]["resourceCount"] == "2"
        else:
            assert resources is None, name
    # the compiled default has none
    assert main(["compile", "transfer-learning", "-o", str(tmp_path / "d.yaml")]) == 0
    assert "resources:" not in open(tmp_path / "d.yaml").read()
    for bad in (["--cpu", "four"], ["--accelerator", "nvidia.com/gpu:x"],
                ["--accelerator", ":1"]):
        assert main(["compile", "tabular", "-o", str(tmp_path / "x.yaml"), *bad]) == 2
    assert not (tmp_path / "x.yaml").exists()


def test_execution_providers_are_selectable_and_recorded(iris_model, monkeypatch, tmp_path):
    from kfp_interop.onnx_model import execution_providers, ort_session
    from kfp_interop.steps import export_onnx_step

    assert execution_providers("cpu") == ["CPUExecutionProvider"]
    assert execution_providers("auto")[-1] == "CPUExecutionProvider"
    with pytest.raises(InvalidInputError, match="'cuda' is not available here.*onnxruntime-gpu"):
        execution_providers("cuda")
    monkeypatch.setenv("KFP_INTEROP_ORT_PROVIDERS", "cuda")
    with pytest.raises(InvalidInputError, match="'cuda' is not available"):
        ort_session(os.path.join(iris_model[0], "model.onnx"))
    monkeypatch.setenv("KFP_INTEROP_ORT_PROVIDERS", "cpu")
    native_dir = os.path.join(os.path.dirname(iris_model[0]), "native")
    meta = export_onnx_step(model_dir=native_dir, test_path=iris_model[2],
                       out_dir=str(tmp_path / "onnx"))
    assert meta.parity["provider"] == "CPUExecutionProvider"


def test_targets_declare_their_options_and_layout(iris_onnx, tmp_path, capsys):
    """Each target says which options it takes and which storage layout it reads; the
    CLI reaches any of them with --option, checked by the target before anything runs."""
    from kfp_interop.deploy import DEPLOY_TARGETS

    kserve, seldon = DEPLOY_TARGETS.get("kserve"), DEPLOY_TARGETS.get("seldon")
    assert {"runtime", "service_account", "replicas", "cpu"} <= set(kserve.options())
    assert "runtime" not in seldon.options() and DEPLOY_TARGETS.get("local").options() == {}
    assert kserve.layout() == "triton" and DEPLOY_TARGETS.get("local").layout() == ""
    assert seldon.layout({"implementation": "MLFLOW_SERVER"}) == "mlserver"
    # the pipelines' upload writes the layout the target reads
    from kfp_interop.steps import upload_model_step

    for target, options, layout in (("seldon", '{"implementation": "MLFLOW_SERVER"}',
                                     "mlserver"), ("kserve", "", "triton"),
                                    ("local", "", "triton")):
        _, meta = upload_model_step(model_dir=os.path.dirname(iris_onnx), layout="",
                              storage_uri=str(tmp_path / f"repo-{target}"),
                              deploy_target=target, deploy_options=options,
                              out_dir=str(tmp_path / f"up-{target}"))
        assert meta["layout"] == layout, target
    assert main(["deploy", iris_onnx, "--target", "kserve", "--storage-uri", S3, "--dry-run",
                 "--output-dir", str(tmp_path), "--option", "replicas=2", "--option",
                 "service_account=sa-models"]) == 0
    manifest = yaml.safe_load(open(tmp_path / "kserve.yaml"))
    assert manifest["spec"]["predictor"]["minReplicas"] == 2
    assert manifest["spec"]["predictor"]["serviceAccountName"] == "sa-models"
    capsys.readouterr()
    for bad, said in ((["--option", "bogus=1"], "Option(s) ['bogus'] do not apply to target "
                                                 "'kserve': it takes ["),
                      (["--option", "replicas=two"], "replicas='two' of target 'kserve' must "
                                                     "be a int"),
                      (["--option", "replicas=0"], "replicas=0 must be a whole number"),
                      (["--option", "novalue"], "must look like KEY=VALUE")):
        assert main(["deploy", iris_onnx, "--target", "kserve", "--storage-uri", S3,
                     "--dry-run", "--output-dir", str(tmp_path / "bad"), *bad]) == 2
        assert said in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
