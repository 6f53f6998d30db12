"""manifests/: rendered as kustomize would (namespace, labels) and every object validated
strictly against the Kubernetes schemas; RBAC grants exactly what the deployer uses."""

import os

import kubernetes_validate
import pytest
import yaml

from kfp_interop.deploy import DEPLOY_TARGETS
from kfp_interop.deploy.kserve import KServeSpec
from kfp_interop.deploy.kube_api import VERBS

# the custom resources the deployer touches: every target that renders manifests
TARGET_SPECS = {name: t.spec for name, t in DEPLOY_TARGETS.items() if t.renders_manifests}

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANIFESTS = os.path.join(ROOT, "manifests")


def render(directory=MANIFESTS):
    """The kustomization's resources with its namespace and labels applied."""
    with open(os.path.join(directory, "kustomization.yaml")) as f:
        kust = yaml.safe_load(f)
    labels = {}
    for entry in kust.get("labels", []):
        labels.update(entry["pairs"])
    objects = []
    for res in kust["resources"]:
        with open(os.path.join(directory, res)) as f:
            for obj in yaml.safe_load_all(f):
                obj["metadata"]["namespace"] = kust["namespace"]
                obj["metadata"].setdefault("labels", {}).update(labels)
                for subject in obj.get("subjects", []):
                    subject.setdefault("namespace", kust["namespace"])
                objects.append(obj)
    return objects


@pytest.fixture(scope="module")
def objects():
    return {(o["kind"], o["metadata"]["name"]): o for o in render()}


def test_every_object_passes_strict_kubernetes_validation(objects):
    """Built-in kinds against Kubernetes' schemas, custom resources (the ServingRuntime)
    against their strict CRD schemas."""
    from kfp_interop.deploy.kube_api import Resource
    from kfp_interop.deploy.manifests import crd_schema, validate_schema

    version = kubernetes_validate.latest_version()
    for obj in objects.values():
        if "." in obj["apiVersion"].split("/")[0] and not obj["apiVersion"].startswith(
                "rbac.authorization.k8s.io"):
            group, ver = obj["apiVersion"].split("/")
            schema = crd_schema(Resource(group, ver, "", obj["kind"]))
            assert schema is not None, obj["kind"]
            validate_schema(obj, schema)
        else:
            kubernetes_validate.validate(obj, version, strict=True)
    assert len(objects) == 20
    assert objects[("ServingRuntime", "kfp-interop-onnx")]


def test_the_runtime_manifests_are_the_rendered_ones():
    """manifests/(cluster)servingruntime.yaml = serving_runtime() for the release image,
    valid against the strict CRD schemas."""
    from kfp_interop.deploy.kube_api import Resource
    from kfp_interop.deploy.kserve import serving_runtime
    from kfp_interop.deploy.manifests import crd_schema, validate_schema

    for cluster, name in ((False, "servingruntime.yaml"), (True, "clusterservingruntime.yaml")):
        with open(os.path.join(MANIFESTS, name)) as f:
            shipped = yaml.safe_load(f)
        assert shipped == serving_runtime(cluster=cluster)
        validate_schema(shipped, crd_schema(Resource("serving.kserve.io", "v1alpha1", "",
                                                     shipped["kind"])))


def test_role_grants_exactly_the_deployers_verbs_and_resources(objects):
    role = objects[("Role", "kfp-interop-deployer")]
    granted = {(g, r): set(rule["verbs"]) for rule in role["rules"]
               for g in rule["apiGroups"] for r in rule["resources"]}
    needed = {(s.resource.group, s.resource.plural): set(VERBS) for s in TARGET_SPECS.values()}
    assert granted == needed
    binding = objects[("RoleBinding", "kfp-interop-deployer")]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "kfp-interop-deployer"}
    assert ("ServiceAccount", binding["subjects"][0]["name"]) in objects


def test_dask_role_grants_exactly_what_the_operator_cluster_uses(objects):
    from kfp_interop.deploy.dask_operator import DASK_CLUSTER, DASK_VERBS

    role = objects[("Role", "kfp-interop-dask")]
    assert role["rules"] == [{"apiGroups": [DASK_CLUSTER.group],
                              "resources": [DASK_CLUSTER.plural],
                              "verbs": list(DASK_VERBS)}]
    binding = objects[("RoleBinding", "kfp-interop-dask")]
    assert binding["roleRef"]["name"] == "kfp-interop-dask"
    assert ("ServiceAccount", binding["subjects"][0]["name"]) in objects


def test_s3_secret_and_service_account_line_up_with_the_deploy_specs(objects):
    secret = objects[("Secret", "kfp-interop-s3")]
    ann = secret["metadata"]["annotations"]
    assert {"serving.kserve.io/s3-endpoint", "serving.kserve.io/s3-usehttps",
            "serving.kserve.io/s3-region"} <= set(ann)
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "S3_ENDPOINT"} <= set(
        secret["stringData"])
    sa = objects[("ServiceAccount", "kfp-interop-s3")]
    assert {"name": "kfp-interop-s3"} in sa["secrets"]
    assert KServeSpec(name="m", storage_uri="s3://b/p").service_account_name == "kfp-interop-s3"
    # nothing real committed: every credential is a placeholder
    for kind, name in objects:
        if kind == "Secret":
            for key, value in objects[(kind, name)]["stringData"].items():
                if any(w in key for w in ("SECRET", "ACCESS_KEY", "PASSWORD", "TOKEN",
                                          "USERNAME", "_KEY", "CREDENTIALS")):
                    assert value == "CHANGE-ME", (name, key)


@pytest.mark.parametrize("uri", ["s3://models/repo", "gs://models/repo",
                                 "https://acct01.blob.core.windows.net/models/repo"])
def test_seldon_secrets_configure_the_remote_each_rendered_uri_names(objects, uri):
    """For each storage, the Secret the seldon (v1: environment variables) and seldon-v2
    (v2: a remote as YAML) targets name exists in manifests/ and configures the rclone
    remote their URI names, with placeholders only."""
    import yaml

    from kfp_interop.deploy.seldon import SELDON_SECRETS, rclone_uri
    from kfp_interop.deploy.seldon_v2 import SELDON_V2_SECRETS
    from kfp_interop.storage import parse_uri

    scheme = parse_uri(uri)[0]
    remote = rclone_uri(uri).split("://", 1)[0]
    v1 = objects[("Secret", SELDON_SECRETS[scheme])]["stringData"]
    assert v1[f"RCLONE_CONFIG_{remote.upper()}_TYPE"] in ("s3", "google cloud storage",
                                                          "azureblob")
    v2 = objects[("Secret", SELDON_V2_SECRETS[scheme])]["stringData"]
    config = yaml.safe_load(v2[remote])
    assert config["name"] == remote and config["type"] == v1[
        f"RCLONE_CONFIG_{remote.upper()}_TYPE"]
    for key, value in config["parameters"].items():
        if any(w in key for w in ("key", "secret", "credentials", "account")):
            assert value == "CHANGE-ME", (SELDON_V2_SECRETS[scheme], key)


def test_the_mlflow_secret_carries_what_the_pipelines_mount(objects):
    from kfp_interop.pipelines.common import MLFLOW_ENV, MLFLOW_SECRET

    secret = objects[("Secret", MLFLOW_SECRET)]
    assert set(MLFLOW_ENV) == set(secret["stringData"])


def test_gcs_and_azure_secrets_hold_what_the_pipelines_read(objects):
    """The Secrets the compiled pipelines mount for GCS and Azure hold the keys they name
    (pipelines/common.py), so a filled-in template reaches the tasks."""
    from kfp_interop.deploy.kserve import STORAGE_SERVICE_ACCOUNTS
    from kfp_interop.pipelines.common import AZURE_ENV, AZURE_SECRET, GCS_KEY_FILE, GCS_SECRET

    azure = set(objects[("Secret", AZURE_SECRET)]["stringData"])
    assert set(AZURE_ENV.values()) <= azure
    # KServe's storage initializer reads a service principal from the same Secret
    assert {"AZ_CLIENT_ID", "AZ_CLIENT_SECRET", "AZ_SUBSCRIPTION_ID", "AZ_TENANT_ID"} <= azure
    assert set(objects[("Secret", GCS_SECRET)]["stringData"]) == {GCS_KEY_FILE}
    # the service accounts KServe predictors run as, by scheme, list those Secrets
    for scheme, account in STORAGE_SERVICE_ACCOUNTS.items():
        assert {"name": f"kfp-interop-{scheme.replace('az', 'azure').replace('gs', 'gcs')}"
                } in objects[("ServiceAccount", account)]["secrets"]


FLOWER = {side: os.path.join(MANIFESTS, "flower", side) for side in ("superlink", "supernode")}


def _flower(side):
    objects = render(FLOWER[side])
    version = kubernetes_validate.latest_version()
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def _mounted_file(pod, path, objects):
    """The Secret key a container path reads (the volume mounted there, from a Secret
    the same kustomization ships)."""
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    folder, _, key = path.rpartition("/")
    volume = next(v for v in pod["volumes"] if v["name"] == mounts[folder])
    secret = objects[("Secret", volume["secret"]["secretName"])]
    assert key in secret["stringData"], (path, secret["metadata"]["name"])
    return secret["metadata"]["name"], key


def test_flower_manifests_are_valid_and_flower_takes_their_arguments():
    """manifests/flower/: the SuperLink (Deployment + Service) and the data owner's
    SuperNode template pass strict Kubernetes validation; their arguments parse with
    Flower's own command-line parsers; every certificate they name is mounted from a
    Secret that holds it; ports agree; the image is the release image; the node config
    has a data-path on the read-only data volume; the pipeline's Secret and variable
    names are those the manifests ship."""
    from flwr.common.config import parse_config_args
    from flwr.superlink.cli.flower_superlink import _parse_args_run_superlink
    from flwr.supernode.cli.flower_supernode import _parse_args_run_supernode

    from kfp_interop._version import __version__
    from kfp_interop.constants import IMAGE_REPOSITORY
    from kfp_interop.flower.deployment import CA_ENV, RESULTS_ENV

    link = _flower("superlink")
    pod = link[("Deployment", "kfp-interop-superlink")]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == f"{IMAGE_REPOSITORY}:{__version__}"
    args = _parse_args_run_superlink().parse_args(container["args"])
    assert not args.insecure and args.isolation == "subprocess"
    for path in (args.ssl_ca_certfile, args.ssl_certfile, args.ssl_keyfile):
        _mounted_file(pod, path, link)
    port = container["ports"][0]
    assert args.port == port["containerPort"] and args.host == "0.0.0.0"
    service = link[("Service", "kfp-interop-superlink")]["spec"]
    assert service["ports"][0]["targetPort"] == port["name"]
    labels = link[("Deployment", "kfp-interop-superlink")]["spec"]["template"]["metadata"]
    assert service["selector"].items() <= labels["labels"].items()
    assert RESULTS_ENV in {e["name"] for e in container["env"]}

    owner = _flower("supernode")
    pod = owner[("Deployment", "kfp-interop-supernode")]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == f"{IMAGE_REPOSITORY}:{__version__}"
    args = _parse_args_run_supernode().parse_args(container["args"])
    assert not args.insecure and args.isolation == "subprocess"
    assert _mounted_file(pod, args.root_certificates, owner) == \
        ("kfp-interop-superlink-tls", "ca.crt")
    host, port_text = args.superlink.rsplit(":", 1)
    assert host == f"kfp-interop-superlink.{render(FLOWER['superlink'])[0]['metadata']['namespace']}.svc"
    assert int(port_text) == service["ports"][0]["port"]
    config = parse_config_args([args.node_config])
    data = next(m for m in container["volumeMounts"] if m["name"] == "data")
    assert config["data-path"].startswith(data["mountPath"] + "/") and data["readOnly"]

    # the pipeline's side: the CA Secret in its namespace, mapped to the variable the
    # task reads, in the compiled deployment graph
    main = {(o["kind"], o["metadata"]["name"]): o for o in render()}
    assert "ca.crt" in main[("Secret", "kfp-interop-superlink-tls")]["stringData"]
    from kfp import compiler

    from kfp_interop.pipelines.registry import PIPELINES
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "fl.yaml")
        compiler.Compiler().compile(PIPELINES.get("federated-learning").load(
            {"engine": "deployment"}), path)
        with open(path) as f:
            docs = list(yaml.safe_load_all(f))
    executors = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    env = executors["exec-federated-flower"]["secretAsEnv"]
    assert {"secretName": "kfp-interop-superlink-tls",
            "keyToEnv": [{"secretKey": "ca.crt", "envVar": CA_ENV}],
            "optional": True} in [{k: e[k] for k in ("secretName", "keyToEnv", "optional")}
                                  for e in env]
