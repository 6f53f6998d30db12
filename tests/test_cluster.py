"""The cluster path without a cluster: the image, the Dockerfile, the constraints and
every compiled YAML agree; the image can be pointed at a private registry by digest;
compiled pipelines describe every parameter for the Kubeflow UI and start with the
settings check, which stops a run that could only fail at its end."""

import os
import re

import pytest
import yaml

from kfp_interop._version import __version__
from kfp_interop.errors import InvalidInputError, UnknownNameError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGEST = "registry.example.com/ml/kfp-interop@sha256:" + "ab" * 32


def compiled_files():
    for folder, _, files in os.walk(ROOT):
        if ".venv" in folder or "/." in folder:
            continue
        for name in files:
            if (name == "component.yaml" and "components" in folder) or (
                    name.endswith(".yaml") and folder == os.path.join(ROOT, "pipelines")):
                yield os.path.join(folder, name)


def documents(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def executors(path):
    """The container executors (an importer has none)."""
    return [e for e in documents(path)[0]["deploymentSpec"]["executors"].values()
            if "container" in e]


def test_dockerfile_constraints_version_and_yaml_agree():
    from kfp_interop.components._common import IMAGE, IMAGE_REPOSITORY

    assert IMAGE == f"{IMAGE_REPOSITORY}:{__version__}"
    files = list(compiled_files())
    assert len(files) >= 20
    constraints = dict(line.split("==", 1) for line in open(os.path.join(ROOT, "constraints.txt"))
                       .read().splitlines() if "==" in line and not line.startswith("#"))
    for path in files:
        doc = documents(path)[0]
        assert doc["sdkVersion"] == f"kfp-{constraints['kfp']}", path
        for executor in executors(path):
            container = executor["container"]
            assert container["image"] == IMAGE, path
            command = " ".join(container["command"])
            # nothing is installed at run time: the image has it all
            assert "pip install" not in command and "pip3 install" not in command, path
    dockerfile = open(os.path.join(ROOT, "Dockerfile")).read()
    # scripts/image.sh tags the images with the references the YAML and manifests name
    script = open(os.path.join(ROOT, "scripts", "image.sh")).read()
    assert 'image="$repo:$version"' in script and "print(IMAGE_REPOSITORY)" in script
    full = dockerfile[dockerfile.index("AS full"):]
    assert 'scripts/requirements.py "${EXTRAS}" > /tmp/requirements.txt' in full
    assert "pip install -c constraints.txt -r /tmp/requirements.txt" in full
    assert "ARG PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu" in dockerfile
    serving = dockerfile[dockerfile.index("AS serving"):dockerfile.index("AS full")]
    assert "-c constraints.txt -r requirements-serving.txt" in serving
    assert constraints["torch"].endswith("+cpu")
    extras = re.search(r"ARG EXTRAS=(\S+)", dockerfile).group(1).split(",")
    setup_text = open(os.path.join(ROOT, "setup.py")).read()
    for extra in extras:
        assert f'"{extra}": [' in setup_text, extra
    # every requirement the image installs is pinned
    requirements = re.findall(r'"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?(?:[<>=!]=?[^"]*)?"(?!\s*:)',
                              setup_text[setup_text.index("install_requires"):
                                         setup_text.index('"dev"')])
    normalized = {k.lower().replace("_", "-") for k in constraints}
    missing = [r for r in requirements if r.lower().replace("_", "-") not in normalized]
    assert not missing, f"not pinned in constraints.txt: {missing}"


def test_the_image_can_be_a_private_registry_digest(tmp_path, monkeypatch, capsys):
    from kfp_interop.cli import main
    from kfp_interop.pipelines import image_reference

    assert main(["compile", "tabular", "-o", str(tmp_path / "t.yaml"), "--image", DIGEST]) == 0
    images = {e["container"]["image"] for e in executors(tmp_path / "t.yaml")}
    assert images == {DIGEST}
    monkeypatch.setenv("KFP_INTEROP_IMAGE", "registry.example.com/ml/kfp-interop:0.1.0-rc1")
    serving = "registry.example.com/ml/kfp-interop-serving@sha256:" + "b" * 64
    assert main(["compile", "--all", "--output-dir", str(tmp_path / "all"),
                 "--serving-image", serving]) == 0
    for path in (tmp_path / "all").rglob("*.yaml"):
        if path.parent.name == "manifests":  # the ServingRuntimes run the serving image
            images = {c["image"] for c in documents(path)[0]["spec"]["containers"]}
            assert images == {serving}, path
        else:
            images = {e["container"]["image"] for e in executors(path)}
            assert images == {"registry.example.com/ml/kfp-interop:0.1.0-rc1"}, path
    monkeypatch.setenv("KFP_INTEROP_SERVING_IMAGE", "nope")
    with pytest.raises(InvalidInputError, match="image reference"):
        image_reference("", serving=True)
    for bad in ("kfp-interop", "registry.example.com/ml/kfp-interop@sha256:abc",
                "Registry.example.com/ML:tag with space"):
        with pytest.raises(InvalidInputError, match="image reference"):
            image_reference(bad)
    assert main(["compile", "tabular", "-o", str(tmp_path / "x.yaml"), "--image", "nope"]) == 2
    assert not (tmp_path / "x.yaml").exists()


def test_every_pipeline_parameter_is_described_and_checked_first():
    from kfp_interop.pipelines import PIPELINES

    for name in PIPELINES.names():
        doc = documents(os.path.join(ROOT, "pipelines", f"{name}.yaml"))[0]
        params = doc["root"]["inputDefinitions"]["parameters"]
        undocumented = [p for p, spec in params.items() if not spec.get("description")]
        assert not undocumented, f"{name}: {undocumented}"
        # the cluster profile: nothing registered unless an MLflow server is named
        assert params["register"]["defaultValue"] is False
        tasks = doc["root"]["dag"]["tasks"]
        assert "check-settings" in tasks and not tasks["check-settings"].get("dependentTasks")

        def upstream(task, seen=()):
            deps = set(tasks[task].get("dependentTasks") or [])
            for dep in list(deps):
                deps |= upstream(dep)
            return deps

        for task in tasks:
            if task != "check-settings" and tasks[task].get("componentRef", {}).get(
                    "name", "").startswith("comp-") and not task.startswith("importer"):
                assert "check-settings" in upstream(task), f"{name}: {task} runs before it"


def test_unknown_profile_is_refused(tmp_path):
    from kfp_interop.pipelines import compile_pipeline

    with pytest.raises(UnknownNameError, match="Unknown profile"):
        compile_pipeline("tabular", str(tmp_path / "t.yaml"), profile="laptop")


def test_settings_check_names_what_a_cluster_run_needs(monkeypatch):
    from kfp_interop.steps import check_settings_step

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    # off-cluster: the defaults are fine (a local store, a local server)
    assert check_settings_step(deploy_target="local").startswith("running locally")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    with pytest.raises(InvalidInputError, match="register=true needs an MLflow server: set "
                                                "tracking_uri"):
        check_settings_step(deploy_target="local", register=True)
    with pytest.raises(InvalidInputError, match=r"Option\(s\) \['replicas'\] do not apply "
                                                r"to target 'local'"):
        check_settings_step(deploy_target="local", deploy_options='{"replicas": 2}')
    for bad in ("{replicas: 2}", '["replicas"]', '{"replicas": [2]}'):
        with pytest.raises(InvalidInputError, match="deploy_options="):
            check_settings_step(deploy_target="kserve", storage_uri="s3://m/r",
                                deploy_options=bad)
    with pytest.raises(InvalidInputError, match="deploy_target=kserve .* set storage_uri"):
        check_settings_step(deploy_target="kserve", register=False)
    with pytest.raises(UnknownNameError, match="kserve"):
        check_settings_step(deploy_target="kserv", register=False)
    assert "served inside the smoke-test task" in check_settings_step(
        deploy_target="local", register=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.mlflow:5000")
    assert "registered in MLflow" in check_settings_step(
        deploy_target="kserve", storage_uri="s3://models/repo")
    assert "(dry run)" in check_settings_step(deploy_target="seldon", dry_run=True)


def test_every_pipeline_shows_its_results_in_the_uis_viewers():
    """Metrics (training or the comparison, parity, smoke test), ClassificationMetrics
    (confusion matrix, ROC curve for two classes) and the Markdown model card, as the
    compiled YAML declares them."""
    from kfp_interop.pipelines import PIPELINES

    for name in PIPELINES.names():
        doc = documents(os.path.join(ROOT, "pipelines", f"{name}.yaml"))[0]
        outputs = {}
        for comp_name, comp in doc["components"].items():
            for art, spec in (comp.get("outputDefinitions", {}).get("artifacts") or {}).items():
                outputs[(comp_name, art)] = spec["artifactType"]["schemaTitle"]
        types = set(outputs.values())
        assert {"system.Metrics", "system.Markdown"} <= types, name
        assert outputs[("comp-smoke-test", "report")] == "system.Metrics"
        card = ("comp-adopt-onnx" if name == "onnx-import" else "comp-attach-metadata",
                "model_card")
        assert outputs[card] == "system.Markdown"
        if name != "onnx-import":  # an adopted model was trained elsewhere
            assert outputs[("comp-export-onnx", "parity")] == "system.Metrics"
            assert "system.ClassificationMetrics" in types, name
