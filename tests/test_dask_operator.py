"""dask_cluster=operator: the DaskCluster a task creates through the Dask Kubernetes
operator, checked against the operator's CRD (strict schema derived from the upstream
CRD, which tests/data keeps), created, waited for and deleted whatever happens, driven
with the unchanged ``kubernetes`` client against the HTTP fake of the Kubernetes API
(the test plays the operator)."""

import gzip
import json
import os
import time

import pytest
import yaml

from kfp_interop.deploy.dask_operator import (DASK_CLUSTER, operator_cluster,
                                              render_dask_cluster)
from kfp_interop.deploy.kube_api import CustomObjects
from kfp_interop.deploy.manifests import (SCHEMA_DIR, crd_schema, strict_schema_from_crd,
                                          validate_schema)
from kfp_interop.errors import (DeployTimeoutError, InvalidInputError,
                                KubernetesPermissionError, ManifestValidationError)

HERE = os.path.dirname(os.path.abspath(__file__))


def quiet(_):
    pass


def test_the_shipped_schema_is_derived_from_the_operators_crd():
    """schemas/SOURCES.md: dask/dask-kubernetes' CRD at 1daa175, converted by
    strict_schema_from_crd; the upstream CRD is kept in tests/data."""
    with gzip.open(os.path.join(HERE, "data", "daskcluster-crd.yaml.gz"), "rt") as f:
        crd = yaml.safe_load(f)
    with gzip.open(os.path.join(SCHEMA_DIR, "DaskCluster-v1.strict.json.gz"), "rt") as f:
        shipped = json.load(f)
    assert shipped == json.loads(json.dumps(strict_schema_from_crd(crd)))


def test_the_rendered_cluster_passes_the_crd_and_holds_no_credentials(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value")
    m = render_dask_cluster("kfp-interop-dask-1", namespace="ml", image="img:1", workers=3,
                            cpu="2", memory="8Gi", secrets=("kfp-interop-s3",))
    schema = crd_schema(DASK_CLUSTER)
    validate_schema(m, schema)
    worker = m["spec"]["worker"]
    assert worker["replicas"] == 3
    container = worker["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "8Gi"}
    assert container["envFrom"] == [{"secretRef": {"name": "kfp-interop-s3",
                                                   "optional": True}}]
    assert "s3cr3t-value" not in json.dumps(m)
    bad = json.loads(json.dumps(m))
    bad["spec"]["worker"]["replica"] = 2  # misspelt: the API server would prune it
    with pytest.raises(ManifestValidationError, match="replica"):
        validate_schema(bad, schema)
    with pytest.raises(InvalidInputError, match="dask_workers=0"):
        render_dask_cluster("c", namespace="ml", image="i", workers=0)
    with pytest.raises(Exception, match="lots"):
        render_dask_cluster("c", namespace="ml", image="i", cpu="lots")


def _exists(kube, name):
    return kube.get(DASK_CLUSTER, "ml", name) is not None


def test_created_waited_for_and_deleted(kube):
    objects = CustomObjects(kube.client)
    kube.controller(DASK_CLUSTER, "ml", "dc-1", {"phase": "Running"}, delay=0.1)
    with operator_cluster(namespace="ml", image="img:1", workers=2, objects=objects,
                          poll=0.05, name="dc-1", log=quiet) as address:
        assert address == "tcp://dc-1-scheduler.ml.svc.cluster.local:8786"
        assert kube.get(DASK_CLUSTER, "ml", "dc-1")["spec"]["worker"]["replicas"] == 2
    assert not _exists(kube, "dc-1")


def test_deleted_when_training_fails_times_out_or_the_operator_refuses(kube):
    objects = CustomObjects(kube.client)
    with pytest.raises(DeployTimeoutError, match="not Running after 0.3 s.*operator"):
        with operator_cluster(namespace="ml", image="i", objects=objects, timeout=0.3,
                              poll=0.05, name="dc-2", log=quiet):
            pass
    assert not _exists(kube, "dc-2")
    kube.controller(DASK_CLUSTER, "ml", "dc-3", {"phase": "Running"}, delay=0.1)
    with pytest.raises(RuntimeError, match="a worker died"):
        with operator_cluster(namespace="ml", image="i", objects=objects, poll=0.05,
                              name="dc-3", log=quiet):
            raise RuntimeError("a worker died")
    assert not _exists(kube, "dc-3")
    kube.controller(DASK_CLUSTER, "ml", "dc-4", {"phase": "Error"}, delay=0.1)
    with pytest.raises(InvalidInputError, match="phase Error"):
        with operator_cluster(namespace="ml", image="i", objects=objects, poll=0.05,
                              name="dc-4", log=quiet):
            pass
    assert not _exists(kube, "dc-4")


def test_a_missing_grant_is_named(kube):
    kube.fail("post", 403, "Forbidden")
    with pytest.raises(KubernetesPermissionError, match="create daskclusters.*rbac"):
        with operator_cluster(namespace="ml", image="i", objects=CustomObjects(kube.client),
                              log=quiet):
            pass


def test_the_train_step_deletes_the_cluster_when_its_scheduler_cannot_be_reached(
        kube, tmp_path, monkeypatch):
    """The whole path from the step: the cluster is created and reported Running, the
    scheduler's in-cluster address does not answer (no cluster DNS here): the step fails
    with the address named, in bounded time, and the DaskCluster is gone."""
    from test_dask import write_table

    from kfp_interop.steps import tabular

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": kube.url}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "u",
                                                  "namespace": "ml"}}],
        "users": [{"name": "u", "user": {}}]}))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setattr(tabular, "OPERATOR_CONNECT_TIMEOUT", 2.0)
    monkeypatch.setattr("kfp_interop.deploy.dask_operator.task_namespace", lambda: "ml")
    import uuid

    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=7))
    name = f"kfp-interop-dask-{uuid.UUID(int=7).hex[:10]}"
    kube.controller(DASK_CLUSTER, "ml", name, {"phase": "Running"}, delay=0.1)
    folder = write_table(tmp_path / "t", parts=2, rows=100)
    start = time.monotonic()
    with pytest.raises(InvalidInputError, match="-scheduler.ml.svc.cluster.local:8786.*"
                                                "cannot be reached"):
        tabular.load_data_step(dataset=folder, target_column="label", engine="dask",
                               dask_cluster="operator", train_path=str(tmp_path / "tr"),
                               test_path=str(tmp_path / "te"))
    assert time.monotonic() - start < 60
    assert not _exists(kube, name)
    with pytest.raises(InvalidInputError, match="dask_scheduler.*operator.*give one"):
        tabular.load_data_step(dataset=folder, target_column="label", engine="dask",
                               dask_cluster="operator", dask_scheduler="tcp://h:8786",
                               train_path=str(tmp_path / "tr"), test_path=str(tmp_path / "te"))


def test_the_cli_renders_the_cluster_for_review(tmp_path, capsys):
    from kfp_interop.cli import main

    assert main(["dask-cluster", "--workers", "4", "--cpu", "2", "--memory", "8Gi",
                 "--namespace", "ml", "-o", str(tmp_path / "c.yaml")]) == 0
    manifest = yaml.safe_load((tmp_path / "c.yaml").read_text())
    validate_schema(manifest, crd_schema(DASK_CLUSTER))
    assert manifest["spec"]["worker"]["replicas"] == 4
    assert manifest["metadata"]["namespace"] == "ml"
    assert main(["dask-cluster", "--workers", "0"]) == 2
    assert "dask_workers=0" in capsys.readouterr().err
