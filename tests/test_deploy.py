"""Deploy targets: manifests against the strict CRD schemas, admission rules, dry run,
and the apply/wait/confirm/rollback/canary flow driven with the unchanged ``kubernetes``
client against an HTTP fake of the Kubernetes API."""

import json
import os

import pytest
import yaml
from conftest import refdata

from kfp_interop.deploy import (deploy, promote, render_manifest, rollback,
                                validate_manifest)
from kfp_interop.deploy.kserve import KServeSpec
from kfp_interop.deploy.seldon import SeldonSpec
from kfp_interop.deploy.seldon_v2 import SeldonV2Spec
from kfp_interop.errors import (DeployError, DeployTimeoutError, KubernetesAPIError,
                                KubernetesNotFoundError, KubernetesPermissionError,
                                ManifestValidationError)

S3 = "s3://models/iris-repo"
SCHEMAS = {"kserve": "InferenceService-v1beta1", "seldon": "SeldonDeployment-v1",
           "seldon-v2": "Model-v1alpha1"}


def strict_schema(target):
    """The strict CRD schema shipped with the package (what every dry run checks)."""
    import gzip

    from kfp_interop.deploy.manifests import SCHEMA_DIR

    with gzip.open(os.path.join(SCHEMA_DIR, f"{SCHEMAS[target]}.strict.json.gz"), "rt") as f:
        return json.load(f)


@pytest.mark.parametrize("kind", sorted(set(SCHEMAS.values()) | {
    "ServingRuntime-v1alpha1", "ClusterServingRuntime-v1alpha1"}))
def test_shipped_schemas_are_the_reference_ones(kind):
    """The package's schemas equal those derived from the upstream CRDs (SOURCES.md)."""
    import gzip

    from kfp_interop.deploy.manifests import SCHEMA_DIR

    with gzip.open(os.path.join(SCHEMA_DIR, f"{kind}.strict.json.gz"), "rt") as f:
        shipped = json.load(f)
    with open(refdata("schemas", f"{kind}.strict.json")) as f:
        assert shipped == json.load(f)


def quiet(_):
    pass


@pytest.mark.parametrize("target,options", [
    ("kserve", {}), ("kserve", {"canary_percent": 25}),
    ("seldon", {}), ("seldon", {"implementation": "MLFLOW_SERVER"}),
    ("seldon", {"canary_percent": 10, "stable_storage_uri": "s3://models/old"}),
    ("seldon-v2", {"storage_uri": S3 + "/iris", "secret_name": "kfp-interop-s3"}),
])
def test_manifests_pass_the_strict_crd_schemas(iris_onnx, target, options):
    options = {"storage_uri": S3, **options}
    spec, manifest = render_manifest(target, iris_onnx, namespace="models", **options)
    validate_manifest(manifest, strict_schema(target))
    assert manifest["metadata"]["name"] == "iris"
    assert manifest["metadata"]["annotations"]["kfp-interop.dev/onnx-sha256"]


def test_kserve_manifest_fields(iris_onnx):
    _, m = render_manifest("kserve", iris_onnx, storage_uri=S3, canary_percent=20,
                           service_account="s3-reader", cpu="2", memory="2Gi")
    p = m["spec"]["predictor"]
    assert p["model"]["modelFormat"] == {"name": "onnx", "version": "1"}
    assert p["model"]["protocolVersion"] == "v2" and p["model"]["storageUri"] == S3
    assert p["serviceAccountName"] == "s3-reader" and p["canaryTrafficPercent"] == 20
    assert p["model"]["resources"]["limits"] == {"cpu": "2", "memory": "2Gi"}


def test_seldon_manifests(iris_onnx):
    _, m = render_manifest("seldon", iris_onnx, storage_uri=S3)
    graph = m["spec"]["predictors"][0]["graph"]
    assert m["spec"]["protocol"] == "v2" and graph["implementation"] == "TRITON_SERVER"
    assert graph["modelUri"] == S3 and graph["envSecretRefName"] == "kfp-interop-seldon-s3"
    assert graph["name"] == "iris"  # the Triton folder name == the served name
    _, m = render_manifest("seldon-v2", iris_onnx, storage_uri=S3 + "/iris")
    assert m["spec"]["requirements"] == ["onnx"] and m["spec"]["storageUri"] == S3 + "/iris"
    # the repository root (what upload_model returns) works too: the folder is derived
    _, m = render_manifest("seldon-v2", iris_onnx, storage_uri=S3)
    assert m["spec"]["storageUri"] == S3 + "/iris"
    _, m = render_manifest("seldon", iris_onnx, storage_uri=S3, implementation="MLFLOW_SERVER")
    assert m["spec"]["predictors"][0]["graph"]["modelUri"] == S3 + "/iris"


@pytest.mark.parametrize("uri,account", [
    ("s3://models/repo", "kfp-interop-s3"), ("gs://models/repo", "kfp-interop-gcs"),
    ("https://acct01.blob.core.windows.net/models/repo", "kfp-interop-azure")])
def test_kserve_reads_each_cloud_storage_with_that_storages_service_account(
        iris_onnx, uri, account):
    """KServe's storage initializer reads s3://, gs:// and Azure Blob URIs with the
    credentials of the predictor's service account: the one manifests/ sets up for that
    storage, unless one is given ('none': no account)."""
    _, m = render_manifest("kserve", iris_onnx, storage_uri=uri, namespace="models")
    validate_manifest(m, strict_schema("kserve"))
    p = m["spec"]["predictor"]
    assert p["model"]["storageUri"] == uri and p["serviceAccountName"] == account
    _, m = render_manifest("kserve", iris_onnx, storage_uri=uri, service_account="mine")
    assert m["spec"]["predictor"]["serviceAccountName"] == "mine"
    _, m = render_manifest("kserve", iris_onnx, storage_uri=uri, service_account="none")
    assert "serviceAccountName" not in m["spec"]["predictor"]
    if "blob.core.windows.net" in uri:  # the short form is written as KServe reads it
        _, m = render_manifest("kserve", iris_onnx, storage_uri="az://acct01/models/repo")
        assert m["spec"]["predictor"]["model"]["storageUri"] == uri


@pytest.mark.parametrize("target", ["seldon", "seldon-v2"])
@pytest.mark.parametrize("uri,remote_uri,scheme", [
    ("s3://models/repo", "s3://models/repo", "s3"),
    ("gs://models/repo", "gs://models/repo", "gs"),
    ("https://acct01.blob.core.windows.net/models/repo", "azureblob://models/repo", "az"),
    ("az://acct01/models/repo", "azureblob://models/repo", "az")])
def test_seldon_reads_each_cloud_storage_through_that_storages_rclone_secret(
        iris_onnx, target, uri, remote_uri, scheme):
    """Seldon Core reads S3, GCS and Azure Blob with rclone: the URI is written with the
    remote its Secret configures (Azure's account lives in the remote) and the Secret
    is the one manifests/ sets up for that storage and Seldon version."""
    from kfp_interop.deploy.seldon import SELDON_SECRETS
    from kfp_interop.deploy.seldon_v2 import SELDON_V2_SECRETS

    def written(m):
        if target == "seldon":
            graph = m["spec"]["predictors"][0]["graph"]
            return graph["modelUri"], graph.get("envSecretRefName")
        return m["spec"]["storageUri"], m["spec"].get("secretName")

    folder = "" if target == "seldon" else "/iris"
    _, m = render_manifest(target, iris_onnx, storage_uri=uri, namespace="models")
    validate_manifest(m, strict_schema(target))
    secrets = SELDON_SECRETS if target == "seldon" else SELDON_V2_SECRETS
    assert written(m) == (remote_uri + folder, secrets[scheme])
    _, m = render_manifest(target, iris_onnx, storage_uri=uri, secret_name="mine")
    assert written(m)[1] == "mine"
    _, m = render_manifest(target, iris_onnx, storage_uri=uri, secret_name="none")
    assert written(m)[1] is None
    with pytest.raises(ManifestValidationError, match="secret name"):
        render_manifest(target, iris_onnx, storage_uri=uri, secret_name="Not_A_Name")


def test_seldon_v1_mounts_a_claim_and_a_canary_keeps_the_live_uri(iris_onnx):
    _, m = render_manifest("seldon", iris_onnx, storage_uri="pvc://models-pvc/repo")
    validate_manifest(m, strict_schema("seldon"))
    graph = m["spec"]["predictors"][0]["graph"]
    assert graph["modelUri"] == "pvc://models-pvc/repo" and "envSecretRefName" not in graph
    # the stable model's URI read back from the cluster is already in rclone's form
    _, m = render_manifest("seldon", iris_onnx, canary_percent=10,
                           storage_uri="https://acct01.blob.core.windows.net/models/v2",
                           stable_storage_uri="azureblob://models/v1")
    assert [p["graph"]["modelUri"] for p in m["spec"]["predictors"]] == [
        "azureblob://models/v1", "azureblob://models/v2"]


@pytest.mark.parametrize("target,uri,message", [
    ("seldon-v2", "pvc://models-pvc/repo",
     r"seldon-v2 does not read pvc storage .* it reads s3://, gs://, "
     r"https://ACCOUNT.blob.core.windows.net/\.\.\. URIs"),
    ("seldon", "/srv/models/repo", r"seldon does not read a local path"),
    ("seldon-v2", "https://host/models/repo", r"seldon-v2 does not read https storage"),
    ("kserve", "/srv/models/repo", r"kserve does not read a local path .* it reads s3://, "
                                   r"gs://, https://ACCOUNT.blob.core.windows.net/\.\.\., "
                                   r"pvc:// URIs"),
    ("kserve", "ftp://host/repo", r"the storage schemes are"),
])
def test_a_storage_a_target_cannot_read_is_refused_by_name(iris_onnx, target, uri, message):
    with pytest.raises(ManifestValidationError, match=message):
        render_manifest(target, iris_onnx, storage_uri=uri)


@pytest.mark.parametrize("kwargs,message", [
    ({"name": "Iris_Model"}, "not a DNS-1123 label"),
    ({"name": "x" * 64}, "not a DNS-1123 label"),
    ({"namespace": "Models"}, "namespace 'Models' is not a DNS-1123 label"),
    ({"canary_percent": 101}, "canary percent 101 is out of range"),
    ({"canary_percent": -1}, "out of range"),
    ({"storage_uri": ""}, "needs a storage URI"),
])
def test_admission_rules(iris_onnx, kwargs, message):
    args = {"storage_uri": S3, **kwargs}
    with pytest.raises(ManifestValidationError, match=message):
        render_manifest("kserve", iris_onnx, **args)


def test_seldon_rules():
    with pytest.raises(ManifestValidationError, match="Unknown Seldon implementation 'ONNX'"):
        SeldonSpec(name="m", storage_uri=S3, implementation="ONNX")
    with pytest.raises(ManifestValidationError, match="Seldon Experiment"):
        SeldonV2Spec(name="m", storage_uri=S3, canary_percent=10)
    with pytest.raises(ManifestValidationError, match="stable model"):
        SeldonSpec(name="m", storage_uri=S3, canary_percent=10)
    bad = KServeSpec(name="m", storage_uri=S3).to_manifest()
    bad["spec"]["predictor"]["model"]["storageURI"] = "typo"
    with pytest.raises(ManifestValidationError, match="storageURI"):
        validate_manifest(bad, strict_schema("kserve"))


def test_dry_run_needs_no_cluster(iris_onnx, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    info = deploy("kserve", iris_onnx, storage_uri=S3, dry_run=True, output_dir=str(tmp_path))
    assert info["dry_run"] and info["manifest_path"] == str(tmp_path / "kserve.yaml")
    written = yaml.safe_load(open(info["manifest_path"]))
    assert written == info["manifest"]
    assert "kind: InferenceService" in capsys.readouterr().out


def test_create_not_ready_then_ready_and_answering(kube, server, iris_onnx):
    res = KServeSpec.resource
    kube.controller(res, "models", "iris", {
        "url": server.endpoint, "conditions": [{"type": "Ready", "status": "True"}]},
        delay=1.0)
    info = deploy("kserve", iris_onnx, namespace="models", storage_uri=S3,
                  client=kube.client, poll=0.2, timeout=20, log=quiet)
    assert info["created"] is True and info["endpoint"] == server.endpoint
    obj = kube.get(res, "models", "iris")
    assert obj["spec"]["predictor"]["model"]["storageUri"] == S3
    assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kfp-interop"


def test_existing_object_is_patched_and_previous_kept(kube, server, iris_onnx):
    res = KServeSpec.resource
    _, old = render_manifest("kserve", iris_onnx, namespace="models",
                             storage_uri="s3://models/v1")
    kube.create(res, "models", old)
    kube.set_status(res, "models", "iris", {"url": server.endpoint, "conditions": [
        {"type": "Ready", "status": "True"}]})
    info = deploy("kserve", iris_onnx, namespace="models", storage_uri=S3,
                  client=kube.client, poll=0.1, timeout=10, log=quiet)
    assert info["created"] is False
    assert info["previous"]["spec"]["predictor"]["model"]["storageUri"] == "s3://models/v1"
    assert kube.get(res, "models", "iris")["spec"]["predictor"]["model"]["storageUri"] == S3


def test_forbidden_names_verb_and_resource(kube, iris_onnx):
    kube.fail("post", 403, "Forbidden")
    with pytest.raises(KubernetesPermissionError,
                       match=r"cannot create inferenceservices.serving.kserve.io 'iris' in "
                             r"namespace 'models'.*manifests/rbac.yaml"):
        deploy("kserve", iris_onnx, namespace="models", storage_uri=S3,
               client=kube.client, log=quiet)
    # (kmock records a refused object anyway, so assert on the requests instead)
    assert len(kube.emulator["post"]) == 1 and len(kube.emulator["patch"]) == 0


def test_not_found_and_server_errors(kube, iris_onnx):
    kube.fail("post", 404, "NotFound")
    with pytest.raises(KubernetesNotFoundError, match="CRD is installed"):
        deploy("seldon-v2", iris_onnx, namespace="models", storage_uri=S3,
               client=kube.client, log=quiet)


def test_server_error_is_retried_then_reported(kube, iris_onnx):
    kube.fail("get", 500, "InternalError")
    from kfp_interop.deploy.kube_api import CustomObjects

    api = CustomObjects(kube.client, retries=2, backoff=0.01)
    with pytest.raises(KubernetesAPIError, match="error 500 on get") as info:
        deploy("kserve", iris_onnx, namespace="models", storage_uri=S3,
               client=api, timeout=2, log=quiet)
    assert info.value.status == 500
    assert len(kube.emulator["get"]) == 3  # one try + two retries
    assert len(kube.emulator["post"]) == 0


def test_conflict_on_create_falls_back_to_patch(kube, server, iris_onnx):
    """409: someone created it meanwhile (the fake records the object it refuses)."""
    kube.fail("post", 409, "AlreadyExists")
    kube.controller(KServeSpec.resource, "models", "iris", {
        "url": server.endpoint, "conditions": [{"type": "Ready", "status": "True"}]})
    info = deploy("kserve", iris_onnx, namespace="models", storage_uri=S3,
                  client=kube.client, poll=0.1, timeout=10, log=quiet)
    assert info["created"] is False and len(kube.emulator["patch"]) >= 1


def test_ready_timeout_rolls_back_a_new_service(kube, iris_onnx):
    with pytest.raises(DeployTimeoutError, match="not Ready within 1 s.*Rolled back: deleted"):
        deploy("kserve", iris_onnx, namespace="models", storage_uri=S3,
               client=kube.client, poll=0.1, timeout=1, log=quiet)
    assert kube.get(KServeSpec.resource, "models", "iris") is None


def test_reported_failure_fails_fast_and_restores_previous(kube, iris_onnx):
    res = KServeSpec.resource
    _, old = render_manifest("kserve", iris_onnx, namespace="models",
                             storage_uri="s3://models/v1")
    kube.create(res, "models", old)
    kube.controller(res, "models", "iris", {"modelStatus": {
        "states": {"targetModelState": "FailedToLoad"},
        "lastFailureInfo": {"message": "unknown model iris"}}},
        when=lambda o: o["spec"]["predictor"]["model"]["storageUri"] == S3, delay=0)
    with pytest.raises(DeployError, match="unknown model iris.*restored the previous spec"):
        deploy("kserve", iris_onnx, namespace="models", storage_uri=S3,
               client=kube.client, poll=0.1, timeout=20, log=quiet)
    restored = kube.get(res, "models", "iris")
    assert restored["spec"]["predictor"]["model"]["storageUri"] == "s3://models/v1"


def test_ready_but_serving_another_model_rolls_back(kube, diabetes_model, iris_onnx):
    from kfp_interop.serving import start_server, stop_server

    other = start_server(os.path.join(diabetes_model[0], "model.onnx"), name="iris")
    try:
        kube.controller(SeldonSpec.resource, "models", "iris", {
            "state": "Available", "address": {"url": other.endpoint + "/api/v1.0/predictions"}})
        with pytest.raises(DeployError, match=r"\['inputs', 'outputs', "
                                              r"'properties.onnx_sha256'\] differ.*Rolled "
                                              r"back: deleted"):
            deploy("seldon", iris_onnx, namespace="models", storage_uri=S3,
                   client=kube.client, poll=0.1, timeout=20, log=quiet)
        assert kube.get(SeldonSpec.resource, "models", "iris") is None
    finally:
        stop_server(other.pid)


def test_kserve_canary_then_promote(kube, server, iris_onnx):
    res = KServeSpec.resource
    _, old = render_manifest("kserve", iris_onnx, namespace="models",
                             storage_uri="s3://models/v1")
    kube.create(res, "models", old)
    kube.set_status(res, "models", "iris", {"url": server.endpoint, "conditions": [
        {"type": "Ready", "status": "True"}]})
    info = deploy("kserve", iris_onnx, namespace="models", storage_uri=S3,
                  canary_percent=20, client=kube.client, poll=0.1, timeout=10,
                             log=quiet)
    assert kube.get(res, "models", "iris")["spec"]["predictor"]["canaryTrafficPercent"] == 20
    promoted = promote(info, client=kube.client)
    assert promoted["promoted"] and promoted["canary_percent"] == 0
    assert kube.get(res, "models", "iris")["spec"]["predictor"]["canaryTrafficPercent"] == 100


def test_seldon_canary_then_promote_and_rollback(kube, server, iris_onnx):
    res = SeldonSpec.resource
    _, old = render_manifest("seldon", iris_onnx, namespace="models",
                             storage_uri="s3://models/v1")
    kube.create(res, "models", old)
    kube.set_status(res, "models", "iris", {"state": "Available",
                                            "address": {"url": server.endpoint}})
    info = deploy("seldon", iris_onnx, namespace="models", storage_uri=S3,
                  canary_percent=10, client=kube.client, poll=0.1, timeout=10,
                             log=quiet)
    preds = kube.get(res, "models", "iris")["spec"]["predictors"]
    assert [(p["name"], p["traffic"], p["graph"]["modelUri"]) for p in preds] == [
        ("default", 90, "s3://models/v1"), ("canary", 10, S3)]
    promote(info, client=kube.client)
    preds = kube.get(res, "models", "iris")["spec"]["predictors"]
    assert [(p["name"], p["traffic"], p["graph"]["modelUri"]) for p in preds] == [
        ("default", 100, S3)]
    assert rollback(info, client=kube.client).startswith("restored the previous spec")
    preds = kube.get(res, "models", "iris")["spec"]["predictors"]
    assert [(p["traffic"], p["graph"]["modelUri"]) for p in preds] == [(100, "s3://models/v1")]


def test_smoke_mismatch_after_deploy_rolls_back(kube, iris_onnx, iris_model, tmp_path,
                                                 monkeypatch):
    """Ready, answers with the right tensors, but predicts wrongly: the smoke_test
    component rolls the new service back and fails the task."""
    import numpy as np
    import onnx
    from kfp import dsl

    from kfp_interop.components import smoke_test
    from kfp_interop.errors import SmokeTestError
    from kfp_interop.serving import start_server, stop_server

    wrong = onnx.load(iris_onnx)
    del wrong.metadata_props[:]
    for node in wrong.graph.node:
        for attr in node.attribute:
            if attr.name == "class_weights":
                attr.floats[:] = list(np.roll(np.asarray(attr.floats), 1))
    onnx.save(wrong, str(tmp_path / "wrong.onnx"))
    impostor = start_server(str(tmp_path / "wrong.onnx"), name="iris")
    try:
        res = KServeSpec.resource
        kube.controller(res, "models", "iris", {"url": impostor.endpoint, "conditions": [
            {"type": "Ready", "status": "True"}]})
        info = deploy("kserve", iris_onnx, namespace="models", storage_uri=S3,
           client=kube.client, poll=0.1, timeout=10, log=quiet)
        dep_dir = tmp_path / "deployment"
        dep_dir.mkdir()
        # the component builds its own client from the kubeconfig, as in a real run
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": kube.url}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "u"}}],
            "users": [{"name": "u", "user": {}}]}))
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        (dep_dir / "deployment.json").write_text(json.dumps(info))
        deployment = dsl.Artifact(name="deployment", uri=str(dep_dir),
                                  metadata={k: v for k, v in info.items()
                                            if k not in ("manifest", "previous", "resource")})
        model = dsl.Model(name="model", uri=iris_model[0], metadata={})
        test_data = dsl.Dataset(name="test", uri=iris_model[2], metadata={})
        report = dsl.Metrics(name="report", uri=str(tmp_path / "report"), metadata={})
        with pytest.raises(SmokeTestError):
            smoke_test.python_func(deployment=deployment, model=model, test_data=test_data,
                                   report=report, rows=20)
        written = json.load(open(report.path))  # the report is the artifact's file
        assert written["rollback"].startswith("deleted the new InferenceService")
        assert kube.get(res, "models", "iris") is None
    finally:
        stop_server(impostor.pid)


def test_kserve_over_grpc_is_rendered_and_confirmed_over_grpc(kube, iris_onnx, tmp_path):
    """protocol=grpc-v2: the predictor speaks gRPC on the runtime's h2c port (strict
    schema), and the deploy confirms the model over gRPC (a real server behind the
    status URL); a server that is not there rolls the deployment back."""
    from kfp_interop.deploy.kserve import GRPC_PORT
    from kfp_interop.serving import start_server, stop_server
    from kfp_interop.serving.process import free_port

    _, m = render_manifest("kserve", iris_onnx, storage_uri=S3, protocol="grpc-v2",
                           runtime="kfp-interop")
    validate_manifest(m, strict_schema("kserve"))
    model = m["spec"]["predictor"]["model"]
    assert model["protocolVersion"] == "grpc-v2"
    assert model["ports"] == [{"name": "h2c", "containerPort": GRPC_PORT, "protocol": "TCP"}]
    with pytest.raises(ManifestValidationError, match="Protocol 'grpc'"):
        render_manifest("kserve", iris_onnx, storage_uri=S3, protocol="grpc")

    grpc_port = free_port()
    server = start_server(iris_onnx, extra_args=["--grpc-port", str(grpc_port)])
    try:
        res = KServeSpec.resource
        kube.controller(res, "models", "iris", {
            "url": f"http://127.0.0.1:{grpc_port}",
            "conditions": [{"type": "Ready", "status": "True"}]})
        info = deploy("kserve", iris_onnx, namespace="models", storage_uri=S3,
                      protocol="grpc-v2", client=kube.client, poll=0.1, timeout=10,
                      log=quiet)
        assert info["endpoint"] == f"http://127.0.0.1:{grpc_port}" and info["created"]
    finally:
        stop_server(server.pid)
    kube.controller(res, "models", "iris-b", {"url": f"http://127.0.0.1:{free_port()}",
                                              "conditions": [{"type": "Ready",
                                                              "status": "True"}]})
    with pytest.raises(DeployError, match="does not answer over gRPC.*deleted the new"):
        deploy("kserve", iris_onnx, namespace="models", storage_uri=S3, name="iris-b",
               protocol="grpc-v2", client=kube.client, poll=0.1, timeout=10,
               answer_timeout=1, log=quiet)
    assert kube.get(res, "models", "iris-b") is None
