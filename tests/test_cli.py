"""The kfp-interop command line: listing, compiling, metadata commands, bad arguments."""

import json
import os

import onnx
import pytest
import yaml

from kfp_interop.cli import main


def test_pipelines_lists_the_reference_pipelines(capsys):
    assert main(["pipelines"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == ["deep", "federated-learning", "onnx-import", "tabular",
                     "transfer-learning", "warm-start"]


def test_compile_writes_kfp_ir(tmp_path, capsys):
    out = tmp_path / "t.yaml"
    assert main(["compile", "tabular", "-o", str(out)]) == 0
    spec, platform = yaml.safe_load_all(out.read_text())  # pipeline spec + kubernetes platform
    secret_env = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"][
        "exec-upload-model"]["secretAsEnv"][0]
    assert secret_env["secretName"] == "kfp-interop-s3" and secret_env["optional"] is True
    assert spec["pipelineInfo"]["name"] == "tabular"
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert {"dataset", "target_column", "framework", "estimator", "hyperparameters",
            "parity_tolerance"} <= set(params)
    assert params["parity_tolerance"]["defaultValue"] == 1e-4
    assert len(spec["deploymentSpec"]["executors"]) == 12  # check-settings first, optimize
    assert {"storage_uri", "register", "deploy_target", "dry_run", "canary_percent",
            "optimize", "max_accuracy_drop"} <= \
        set(params)
    # credentials are mounted from a Secret, never parameters
    text = out.read_text()
    assert "kfp-interop-s3" in text and "AWS_SECRET_ACCESS_KEY" in text
    assert not any("secret" in p.lower() or "key" in p.lower() for p in params)


def test_compile_unknown_pipeline(capsys):
    assert main(["compile", "tabulr"]) == 2
    assert "Unknown pipeline 'tabulr'; known: deep, federated-learning, onnx-import, " \
        "tabular, transfer-learning, warm-start" in capsys.readouterr().err


def test_metadata_show_validate_render(iris_onnx, capsys):
    assert main(["metadata", "show", iris_onnx]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["name"] == "iris"
    assert main(["metadata", "validate", iris_onnx]) == 0
    assert "OK" in capsys.readouterr().out
    for fmt in ("oip", "seldon", "mlflow", "kfp"):
        assert main(["metadata", "render", "--format", fmt, iris_onnx]) == 0
        assert isinstance(json.loads(capsys.readouterr().out), dict)
    assert main(["metadata", "render", "--format", "triton", iris_onnx]) == 0
    assert 'platform: "onnxruntime_onnx"' in capsys.readouterr().out


def test_metadata_validate_fails_on_tampered_or_recordless(iris_onnx, tmp_path, capsys):
    model = onnx.load(iris_onnx)
    model.graph.node[0].name = "edited"
    onnx.save(model, str(tmp_path / "t.onnx"))
    assert main(["metadata", "validate", str(tmp_path / "t.onnx")]) == 2
    assert "graph changed" in capsys.readouterr().err
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "bare.onnx"))
    assert main(["metadata", "validate", str(tmp_path / "bare.onnx")]) == 2
    assert "carries no kfp-interop" in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["run", "tabular", "--local", "--param", "colour=red"], "Unknown pipeline parameter 'colour'"),
    (["run", "tabular", "--local", "--param", "seed=abc"], "seed='abc' is not a valid int"),
    (["run", "tabular", "--local", "--param", "scaler=maybe"], "not a valid bool"),
    (["run", "tabular", "--local", "--param", "seed"], "must look like KEY=VALUE"),
    (["run", "tabular"], "add --local"),
])
def test_run_argument_errors(args, message, capsys, tmp_path):
    assert main(args + ["--output-dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "summary.json")


def test_deploy_dry_run_command_writes_the_manifest(iris_onnx, tmp_path, capsys):
    assert main(["deploy", iris_onnx, "--target", "seldon", "--dry-run", "--storage-uri",
                 "s3://m/repo", "--output-dir", str(tmp_path)]) == 0
    manifest = yaml.safe_load(open(tmp_path / "seldon.yaml"))
    assert manifest["kind"] == "SeldonDeployment" and manifest["metadata"]["name"] == "iris"
    assert "kind: SeldonDeployment" in capsys.readouterr().out
    assert main(["deploy", iris_onnx, "--target", "kserve", "--dry-run", "--storage-uri",
                 "s3://m/repo", "--canary", "120", "--output-dir", str(tmp_path)]) == 2
    assert "canary percent 120 is out of range" in capsys.readouterr().err
    assert main(["deploy", iris_onnx, "--target", "kserve", "--dry-run", "--name", "Bad_Name",
                 "--storage-uri", "s3://m/r", "--output-dir", str(tmp_path)]) == 2
    assert "not a DNS-1123 label" in capsys.readouterr().err


def test_deploy_without_cluster_config_is_a_clear_error(iris_onnx, tmp_path, monkeypatch,
                                                         capsys):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert main(["deploy", iris_onnx, "--target", "kserve", "--storage-uri", "s3://m/r"]) == 2
    assert "No Kubernetes configuration" in capsys.readouterr().err


def test_upload_and_register_commands(iris_onnx, tmp_path, capsys, s3_env, monkeypatch,
                                      mlflow_url):
    from kfp_interop.storage import S3Settings

    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    assert main(["upload", iris_onnx, "--to", "s3://cli-bucket/repo", "--create-bucket"]) == 0
    assert json.loads(capsys.readouterr().out)["model_uri"] == "s3://cli-bucket/repo/iris"
    assert S3Settings.from_env().client().stat_object("cli-bucket", "repo/iris/1/model.onnx")
    with pytest.raises(SystemExit):
        main(["upload", iris_onnx, "--to", str(tmp_path / "r"), "--layout", "bogus"])
    capsys.readouterr()
    assert main(["register", iris_onnx, "--tracking-uri", mlflow_url, "--name",
                 "iris-cli", "--alias", "staging"]) == 0
    assert json.loads(capsys.readouterr().out)["model_uri"] == "models:/iris-cli@staging"


@pytest.mark.parametrize("name", ["tabular", "deep", "transfer-learning", "warm-start",
                                  "federated-learning",
                                  "onnx-import"])
def test_compiled_pipelines_cache_only_what_is_pure(name, tmp_path):
    """Side effects are never served from KFP's cache; tasks that talk to S3, MLflow or
    Kubernetes retry with backoff; load_data's cache key follows the data's content."""
    out = tmp_path / "p.yaml"
    assert main(["compile", name, "-o", str(out)]) == 0
    spec, platform = yaml.safe_load_all(out.read_text())
    tasks = spec["root"]["dag"]["tasks"]
    cached = {t: bool(v.get("cachingOptions", {}).get("enableCache")) for t, v in tasks.items()}
    side_effects = {"upload-model", "register-model", "deploy", "smoke-test", "promote"}
    # the settings check and the fingerprint look at the world as it is now
    now = {"check-settings"} | ({"fingerprint-data"} & set(tasks))
    assert not any(cached[t] for t in side_effects | now)
    loops = {t for t in tasks if t.startswith("for-loop-")}  # groups, not tasks
    assert all(cached[t] for t in set(tasks) - side_effects - now - loops - {"importer"})
    retried = {t for t, v in tasks.items() if v.get("retryPolicy")}
    assert retried == {"upload-model", "register-model", "deploy", "promote"}
    assert tasks["deploy"]["retryPolicy"]["maxRetryCount"] == 3
    for reader in {"load-data", "federated-split"} & set(tasks):
        fp = tasks[reader]["inputs"]["parameters"]["source_fingerprint"]
        assert fp["taskOutputParameter"]["producerTask"] == "fingerprint-data"
    if name in ("tabular", "deep", "warm-start", "federated-learning"):
        assert "fingerprint-data" in tasks
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert {s["secretName"] for s in executors["exec-register-model"]["secretAsEnv"]} == \
        {"kfp-interop-mlflow"}
    assert all(s["optional"] for e in executors.values() for s in e["secretAsEnv"])


def test_load_data_refuses_a_file_changed_after_its_fingerprint(tmp_path):
    import pandas as pd

    from kfp_interop.data import source_fingerprint
    from kfp_interop.errors import DatasetError
    from kfp_interop.steps import load_data_step

    csv = tmp_path / "d.csv"
    pd.DataFrame({"a": [1.0, 2, 3, 4] * 5, "y": [0, 1] * 10}).to_csv(csv, index=False)
    before = source_fingerprint(str(csv))
    assert before.startswith("sha256:") and source_fingerprint("iris").startswith("bundled:iris")
    load_data_step(dataset=str(csv), target_column="y", source_fingerprint=before,
                   train_path=str(tmp_path / "tr"), test_path=str(tmp_path / "te"))
    csv.write_text(csv.read_text().replace("4.0", "5.0"))
    assert source_fingerprint(str(csv)) != before
    with pytest.raises(DatasetError, match="changed after it was fingerprinted"):
        load_data_step(dataset=str(csv), target_column="y", source_fingerprint=before,
                       train_path=str(tmp_path / "tr2"), test_path=str(tmp_path / "te2"))
    assert not (tmp_path / "tr2").exists()


def test_every_storage_task_gets_each_schemes_credentials_from_optional_secrets(tmp_path):
    """The tasks that read or write object storage (data sets, the upload) get S3's and
    Azure's keys as environment and GCS's key file mounted, each from its optional Secret
    (manifests/), and are told where the GCS key is; no credential is a parameter."""
    from kfp_interop.runs import compile as compile_pipeline

    for name in ("tabular", "federated-learning", "onnx-import"):
        out = tmp_path / f"{name}.yaml"
        compile_pipeline(name, str(out))
        spec, platform = yaml.safe_load_all(out.read_text())
        executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
        readers = [e for e in ("exec-upload-model", "exec-load-data", "exec-fingerprint-data",
                               "exec-federated-split") if e in spec["deploymentSpec"]["executors"]]
        assert "exec-upload-model" in readers
        for executor in readers:
            env = {s["secretName"]: s for s in executors[executor]["secretAsEnv"]}
            assert {"kfp-interop-s3", "kfp-interop-azure"} <= set(env), (name, executor)
            assert {k["envVar"] for k in env["kfp-interop-azure"]["keyToEnv"]} == {
                "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCESS_KEY",
                "AZURE_STORAGE_SAS_TOKEN"}
            [volume] = executors[executor]["secretAsVolume"]
            assert (volume["secretName"], volume["mountPath"], volume["optional"]) == (
                "kfp-interop-gcs", "/var/secrets/kfp-interop-gcs", True)
            container = spec["deploymentSpec"]["executors"][executor]["container"]
            assert {"name": "KFP_INTEROP_GCS_CREDENTIALS",
                    "value": "/var/secrets/kfp-interop-gcs/gcloud-application-credentials.json"
                    } in container["env"]
        assert all(s["optional"] for e in executors.values()
                   for s in e.get("secretAsEnv", []) + e.get("secretAsVolume", []))
        params = spec["root"]["inputDefinitions"]["parameters"]
        assert not [p for p in params if any(w in p.lower() for w in (
            "secret", "key", "token", "connection", "credential", "password"))]


def test_compile_mounts_a_claim_into_the_storage_tasks_for_pvc_uris(tmp_path, capsys):
    """compile --storage-pvc CLAIM mounts the PersistentVolumeClaim into every task that
    reads or writes storage, where pvc://CLAIM/... reads it (kfp_interop.storage.pvc);
    the other tasks do not get it; a name that is not a claim's is refused."""
    from kfp_interop.storage.pvc import PVC_ROOT

    out = tmp_path / "t.yaml"
    assert main(["compile", "tabular", "-o", str(out), "--storage-pvc", "models-pvc"]) == 0
    spec, platform = yaml.safe_load_all(out.read_text())
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    mounted = {name for name, e in executors.items() if e.get("pvcMount")}
    # train reads the table's partitions with engine=dask
    assert mounted == {"exec-upload-model", "exec-load-data", "exec-fingerprint-data",
                       "exec-train"}
    for name in mounted:
        [mount] = executors[name]["pvcMount"]
        assert mount["constant"] == "models-pvc"
        assert mount["mountPath"] == f"{PVC_ROOT}/models-pvc"
    capsys.readouterr()
    assert main(["compile", "tabular", "-o", str(out), "--storage-pvc", "Bad_Claim"]) == 2
    assert "names no claim" in capsys.readouterr().err
