"""Components called through ``python_func`` with real artifact objects, the
checked-in compiled YAML, and the import path users rely on."""

import os
import subprocess
import sys

import pytest
from kfp import dsl

from kfp_interop.errors import DatasetError, ParityError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPONENT_NAMES = sorted(d for d in os.listdir(os.path.join(ROOT, "components"))
                         if os.path.isfile(os.path.join(ROOT, "components", d, "component.py")))
PIPELINE_NAMES = ["deep", "federated-learning", "onnx-import", "tabular", "transfer-learning",
                  "warm-start"]


def art(cls, tmp_path, name, metadata=None):
    return cls(name=name, uri=str(tmp_path / name), metadata=dict(metadata or {}))


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """load_data -> train -> export_onnx -> attach_metadata through python_func."""
    from kfp_interop.components import attach_metadata, export_onnx, load_data, train

    tmp = tmp_path_factory.mktemp("components")
    tr, te = art(dsl.Dataset, tmp, "train_data"), art(dsl.Dataset, tmp, "test_data")
    load_data.python_func(dataset="wine", train_data=tr, test_data=te, seed=1)
    model, metrics, cm = (art(dsl.Model, tmp, "model"), art(dsl.Metrics, tmp, "metrics"),
                          art(dsl.ClassificationMetrics, tmp, "cm"))
    train.python_func(train_data=tr, test_data=te, model=model, metrics=metrics,
                      classification_metrics=cm, framework="xgboost", estimator="",
                      hyperparameters='{"n_estimators": 30}', seed=1)
    onnx_model, parity = art(dsl.Model, tmp, "onnx_model"), art(dsl.Metrics, tmp, "parity")
    export_onnx.python_func(model=model, test_data=te, onnx_model=onnx_model, parity=parity)
    final, card = art(dsl.Model, tmp, "final"), art(dsl.Markdown, tmp, "card")
    attach_metadata.python_func(onnx_model=onnx_model, model=final, model_card=card,
                                model_name="wine-xgb")
    return locals()


def test_a_binary_classifier_logs_its_roc_curve(tmp_path):
    """The Kubeflow UI draws ClassificationMetrics' confidenceMetrics as the ROC curve."""
    from kfp_interop.components import load_data, train

    tr, te = art(dsl.Dataset, tmp_path, "tr"), art(dsl.Dataset, tmp_path, "te")
    load_data.python_func(dataset="breast_cancer", train_data=tr, test_data=te)
    model, metrics, cm = (art(dsl.Model, tmp_path, "model"), art(dsl.Metrics, tmp_path, "m"),
                          art(dsl.ClassificationMetrics, tmp_path, "cm"))
    train.python_func(train_data=tr, test_data=te, model=model, metrics=metrics,
                      classification_metrics=cm, framework="sklearn",
                      estimator="logistic_regression", scaler=True)
    curve = cm.metadata["confidenceMetrics"]
    assert 3 <= len(curve) <= 101
    assert curve[0]["falsePositiveRate"] == 0.0 and curve[-1]["recall"] == 1.0
    assert all(0.0 <= p["confidenceThreshold"] <= 1.0 for p in curve)
    assert "roc_curve" not in model.metadata and cm.metadata["confusionMatrix"]


def test_load_data_writes_parquet_splits_with_schema(chain):
    tr, te = chain["tr"], chain["te"]
    assert os.path.isfile(tr.path) and os.path.isfile(te.path)
    assert tr.metadata["split"] == "train" and te.metadata["split"] == "test"
    assert tr.metadata["rows"] == 178 and tr.metadata["train_rows"] + tr.metadata["test_rows"] == 178
    assert len(tr.metadata["data_sha256"]) == 64 and len(tr.metadata["class_labels"]) == 3


def test_train_logs_metrics_and_confusion_matrix(chain):
    assert chain["metrics"].metadata["accuracy"] > 0.8
    cm = chain["cm"].metadata["confusionMatrix"]
    assert [c["displayName"] for c in cm["annotationSpecs"]] == chain["tr"].metadata["class_labels"]
    assert sum(sum(r["row"]) for r in cm["rows"]) == chain["te"].metadata["test_rows"]
    assert chain["model"].metadata["native_format"] == "xgboost-json"
    assert chain["model"].metadata["hyperparameters"] == {"n_estimators": 30}


def test_export_and_attach_metadata(chain):
    from kfp_interop.metadata import load_metadata

    assert chain["parity"].metadata["passed"] == 1.0
    assert chain["onnx_model"].metadata["parity"]["passed"] is True
    final = chain["final"]
    record = load_metadata(os.path.join(final.path, "model.onnx"))
    assert record.name == "wine-xgb" and record.framework["name"] == "xgboost"
    assert final.metadata["inference_metadata"] == record.to_dict()
    assert final.metadata["onnx_sha256"] == record.model["onnx_sha256"]
    assert os.path.isfile(os.path.join(final.path, "model.metadata.json"))
    assert "Model card: wine-xgb" in open(chain["card"].path).read()


def test_export_refuses_over_tolerance_and_writes_nothing(chain, tmp_path):
    from kfp_interop.components import export_onnx

    out = art(dsl.Model, tmp_path, "onnx_model")
    with pytest.raises(ParityError):
        export_onnx.python_func(model=chain["model"], test_data=chain["te"], onnx_model=out,
                                parity=art(dsl.Metrics, tmp_path, "p"), parity_tolerance=0.0)
    assert not os.path.exists(os.path.join(out.path, "model.onnx"))


def test_load_data_bad_input_leaves_no_split(tmp_path):
    from kfp_interop.components import load_data

    tr, te = art(dsl.Dataset, tmp_path, "tr"), art(dsl.Dataset, tmp_path, "te")
    with pytest.raises(DatasetError):
        load_data.python_func(dataset="no-such-set", train_data=tr, test_data=te)
    assert not os.path.exists(tr.path) and not os.path.exists(te.path)


def test_deploy_and_smoke_test_components(chain, tmp_path):
    from kfp_interop.components import deploy, smoke_test
    from kfp_interop.deploy import undeploy

    dep = art(dsl.Artifact, tmp_path, "deployment")
    endpoint = deploy.python_func(model=chain["final"], deployment=dep)
    try:
        assert endpoint.startswith("http://127.0.0.1:") and dep.metadata["pid"] > 0
        report = art(dsl.Metrics, tmp_path, "report")
        smoke_test.python_func(deployment=dep, model=chain["final"], test_data=chain["te"],
                               report=report, rows=5)
        assert report.metadata["passed"] == 1.0 and report.metadata["rows"] == 5
    finally:
        assert undeploy(dict(dep.metadata))


def test_checked_in_yaml_is_fresh_and_compiles_are_byte_identical(tmp_path, monkeypatch):
    """`kfp-interop compile --all` twice gives the same bytes (no time, no path), and
    those are the checked-in component.yaml files and pipelines/*.yaml."""
    from kfp_interop.cli import main

    monkeypatch.delenv("KFP_INTEROP_IMAGE", raising=False)
    for out in ("a", "b"):
        assert main(["compile", "--all", "--output-dir", str(tmp_path / out)]) == 0
    written = sorted(str(p.relative_to(tmp_path / "a")) for p in (tmp_path / "a").rglob("*.yaml"))
    assert len(written) == len(COMPONENT_NAMES) + len(PIPELINE_NAMES) + 2  # + runtimes
    stale = []
    for rel in written:
        first, second = (tmp_path / "a" / rel).read_bytes(), (tmp_path / "b" / rel).read_bytes()
        assert first == second, f"{rel}: two compiles differ"
        assert str(tmp_path) not in first.decode(), f"{rel} holds a machine path"
        checked_in = os.path.join(ROOT, rel)
        if not os.path.exists(checked_in) or open(checked_in, "rb").read() != first:
            stale.append(rel)
    assert not stale, f"stale compiled YAML {stale}: run python scripts/compile_all.py"


def test_component_yaml_loads_and_every_component_has_a_readme():
    from kfp import components

    from kfp_interop.components import COMPONENTS

    for name in COMPONENTS:
        folder = os.path.join(ROOT, "components", name)
        loaded = components.load_component_from_file(os.path.join(folder, "component.yaml"))
        assert loaded.component_spec.name == name.replace("_", "-")
        assert os.path.getsize(os.path.join(folder, "README.md")) > 200


def test_import_kfp_interop_stays_light():
    code = ("import sys, kfp_interop, kfp_interop.metadata, kfp_interop.metadata.render, "
            "kfp_interop.data, kfp_interop.frameworks, kfp_interop.training, "
            "kfp_interop.export, kfp_interop.serving, kfp_interop.storage, "
            "kfp_interop.model_registry, kfp_interop.deploy, kfp_interop.steps, "
            "kfp_interop.pipelines, kfp_interop.cli;"
            "from kfp_interop.cli.parser import build_parser; build_parser();"
            "heavy = [m for m in ('kfp', 'torch', 'onnxruntime', 'mlflow', 'sklearn', "
            "'onnx', 'pandas') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_compiled_graphs_are_those_of_before_the_second_shape_pass():
    """The second shape pass (issue 17) moved code, not graphs: every reference
    pipeline's compiled graph (parameters, tasks, wiring, caching, retries, component
    interfaces, images, platform spec) is the one compiled before it, apart from what its
    item 2 added: the deploy target's own options (``deploy_options`` on every pipeline,
    deploy, check_settings and upload_model) and the upload's layout taken from the
    target (upload_model's ``deploy_target``, its task's ``layout`` left to the target)."""
    import json

    from pipeline_graphs import graph

    with open(os.path.join(ROOT, "tests", "data", "graphs-before-issue-17.json")) as f:
        before = json.load(f)

    def params(d, drop):
        d = dict(d or {})
        if "parameters" in d:
            d["parameters"] = {k: v for k, v in d["parameters"].items() if k not in drop}
        return d

    def without_optimize(g):
        """Issue 20: an optimize task between export (or adopt) and the record, its
        component, and the pipelines' optimize and max_accuracy_drop parameters."""
        g["root"]["inputDefinitions"] = params(g["root"]["inputDefinitions"],
                                               {"optimize", "max_accuracy_drop"})
        tasks = g["root"]["dag"]["tasks"]
        opt = tasks.pop("optimize")
        source = opt["inputs"]["artifacts"]["model"]["taskOutputArtifact"]
        for task in tasks.values():
            for art in (task.get("inputs") or {}).get("artifacts", {}).values():
                if art.get("taskOutputArtifact", {}).get("producerTask") == "optimize":
                    art["taskOutputArtifact"] = dict(source)
            if "optimize" in task.get("dependentTasks", []):
                task["dependentTasks"] = sorted(
                    (set(task["dependentTasks"]) - {"optimize"}) | {source["producerTask"]})
        del g["components"]["comp-optimize"]
        del g["executors"]["exec-optimize"]
        if "comp-adopt-onnx" in g["components"]:  # and adopt's dynamic_batch option
            comp = g["components"]["comp-adopt-onnx"]
            comp["in"] = params(comp["in"], {"dynamic_batch"})
        return g

    def without_dask(g, dask_pipeline=()):
        """Issue 21: tabular's engine, dask_scheduler and dask_workers, passed to
        load_data and train (every pipeline's load_data and train components take them)."""
        dask = {"engine", "dask_scheduler", "dask_workers", "dask_cluster", "dask_worker_cpu",
                "dask_worker_memory"}
        g["root"]["inputDefinitions"] = params(g["root"]["inputDefinitions"], dask)
        for task in g["root"]["dag"]["tasks"].values():
            if task["componentRef"]["name"] in ("comp-load-data", "comp-train"):
                task["inputs"] = params(task.get("inputs"), dask)
        for name, comp in g["components"].items():
            if name.startswith(("comp-load-data", "comp-train")) and \
                    not name.startswith("comp-train-deep"):
                comp["in"] = params(comp["in"], dask)
        if "engine" in dask_pipeline:  # tabular's train reads the table (storage Secrets)
            g["platform"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"].pop(
                "exec-train")
        return g

    def without_flower(g):
        """Issue 22: federated-learning's engine=deployment parameters (unused by the
        simulation graph, which is unchanged)."""
        g["root"]["inputDefinitions"] = params(g["root"]["inputDefinitions"], {
            "superlink", "superlink_insecure", "federation_results", "round_timeout",
            "node_wait_timeout"})
        return g

    def without_later_issues(g):
        """Issue 18 (storage schemes): the storage tasks also get the optional GCS and
        Azure Secrets (platform spec only); issue 20: :func:`without_optimize`; issue 21:
        :func:`without_dask`; issue 22: :func:`without_flower`."""
        engine = g["root"]["inputDefinitions"].get("parameters", {})
        g = without_dask(without_flower(without_optimize(g)), dask_pipeline=set(engine))
        executors = g["platform"].get("platforms", {}).get("kubernetes", {}).get(
            "deploymentSpec", {}).get("executors", {})
        for executor in executors.values():
            executor["secretAsEnv"] = [s for s in executor.get("secretAsEnv", [])
                                       if s["secretName"] != "kfp-interop-azure"]
            volumes = [v for v in executor.pop("secretAsVolume", [])
                       if v["secretName"] != "kfp-interop-gcs"]
            if volumes:
                executor["secretAsVolume"] = volumes
        return g

    def without_item_2(g):
        g["root"]["inputDefinitions"] = params(g["root"]["inputDefinitions"],
                                               {"deploy_options"})
        for task in g["root"]["dag"]["tasks"].values():
            upload = task["componentRef"]["name"] == "comp-upload-model"
            drop = {"deploy_options"} | ({"deploy_target"} if upload else set())
            inputs = params(task.get("inputs"), drop)
            if upload:
                assert inputs["parameters"].pop("layout") == {"runtimeValue": {"constant": ""}}
            task["inputs"] = inputs
        for name, comp in g["components"].items():
            upload = name == "comp-upload-model"
            comp["in"] = params(comp["in"], {"deploy_options"} |
                                ({"deploy_target"} if upload else set()))
        return g

    assert sorted(before) == sorted(f"{n}.yaml" for n in PIPELINE_NAMES)
    for name, old in before.items():
        new = graph(os.path.join(ROOT, "pipelines", name))
        assert "deploy_options" in new["root"]["inputDefinitions"]["parameters"], name
        new = without_later_issues(without_item_2(new))
        for part in old:
            assert new[part] == old[part], f"{name}: {part} changed"
