"""Shared fixtures: small real models built through the library, and real server
processes on 127.0.0.1."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The tests' own PyTorch modules (deep_models.py), allowed as an operator allows theirs:
# by the environment of the process that imports them (inherited by pipeline tasks).
os.environ.setdefault("KFP_INTEROP_ALLOWED_MODULES", "deep_models")
REFDATA = os.environ.get("KFP_INTEROP_REFDATA",
                         os.path.join(os.path.dirname(ROOT), "shared", "refdata"))


def build_model(tmp_dir, dataset="iris", framework="sklearn", estimator="random_forest",
                name="", nan_policy="error", hyperparameters="{}", target_column=""):
    """Run the library's stages (no KFP) and return (model_dir, data_meta, test_path)."""
    import json

    from kfp_interop.steps import run_tabular

    paths = run_tabular(str(tmp_dir), dataset=dataset, target_column=target_column,
                        framework=framework, estimator=estimator, model_name=name,
                        nan_policy=nan_policy, hyperparameters=hyperparameters)
    return paths["model"], json.loads(paths["data_meta"]), paths["test"]


@pytest.fixture(scope="session")
def iris_model(tmp_path_factory):
    """(model_dir, data_meta, test_path) of a random forest on iris named 'iris'."""
    return build_model(tmp_path_factory.mktemp("iris"), name="iris")


@pytest.fixture(scope="session")
def iris_onnx(iris_model):
    return os.path.join(iris_model[0], "model.onnx")


@pytest.fixture(scope="session")
def diabetes_model(tmp_path_factory):
    return build_model(tmp_path_factory.mktemp("diabetes"), dataset="diabetes",
                       framework="xgboost", estimator="", name="diabetes")


@pytest.fixture(scope="session")
def server(iris_onnx, tmp_path_factory):
    """A real OIP server process on 127.0.0.1 serving the iris model."""
    from kfp_interop.serving import start_server, stop_server

    log = str(tmp_path_factory.mktemp("server") / "server.log")
    handle = start_server(iris_onnx, log_path=log)
    yield handle
    stop_server(handle.pid)


def refdata(*parts):
    """A file of the upstream reference data: shared/refdata beside the checkout (or
    $KFP_INTEROP_REFDATA), else the subset vendored in tests/data/refdata (the OIP spec
    and its schemas). Missing from both: a failure in CI, a skip elsewhere."""
    for root in (REFDATA, os.path.join(ROOT, "tests", "data", "refdata")):
        path = os.path.join(root, *parts)
        if os.path.exists(path):
            return path
    message = f"reference data missing: {os.path.join(REFDATA, *parts)} (set KFP_INTEROP_REFDATA)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def oip_validator(name):
    import json

    import jsonschema

    with open(refdata("schemas", "oip-rest", f"{name}.json")) as f:
        return jsonschema.Draft7Validator(json.load(f))


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def s3_env(tmp_path_factory):
    """Environment for the shared S3 server (started by scripts/test.sh, else here)."""
    from services import ACCESS_KEY, SECRET_KEY, Weed

    endpoint = os.environ.get("KFP_INTEROP_TEST_S3")
    weed = None
    if not endpoint:
        weed = Weed(str(tmp_path_factory.mktemp("weed"))).start()
        endpoint = weed.endpoint
    yield {"S3_ENDPOINT": f"http://{endpoint}", "AWS_ACCESS_KEY_ID": ACCESS_KEY,
           "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "S3_USE_HTTPS": "0", "AWS_REGION": "us-east-1"}
    if weed:
        weed.stop()


@pytest.fixture(scope="session")
def gcs_env(tmp_path_factory):
    """Environment for the shared GCS emulator (started by scripts/test.sh, else here)."""
    from services import GCSEmulator

    endpoint = os.environ.get("KFP_INTEROP_TEST_GCS")
    emulator = None
    if not endpoint:
        emulator = GCSEmulator(str(tmp_path_factory.mktemp("gcs"))).start()
        endpoint = emulator.endpoint
    yield {"STORAGE_EMULATOR_HOST": endpoint, "GOOGLE_CLOUD_PROJECT": "kfp-interop"}
    if emulator:
        emulator.stop()


@pytest.fixture(scope="session")
def azure_env(tmp_path_factory):
    """Environment for the shared Azurite (started by scripts/test.sh, else here): the
    connection string of Azurite's development account."""
    from services import AZURITE_ACCOUNT, AZURITE_KEY, Azurite

    endpoint = os.environ.get("KFP_INTEROP_TEST_AZURE")
    azurite = None
    if not endpoint:
        try:
            azurite = Azurite(str(tmp_path_factory.mktemp("azurite"))).start()
        except RuntimeError as e:  # not installed (needs node): tests/azurite/setup.sh
            if os.environ.get("CI"):
                pytest.fail(str(e))
            pytest.skip(str(e))
        endpoint = azurite.endpoint
    yield {"AZURE_STORAGE_CONNECTION_STRING":
           f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
           f"AccountKey={AZURITE_KEY};BlobEndpoint={endpoint};"}
    if azurite:
        azurite.stop()


@pytest.fixture(scope="session")
def mlflow_url(tmp_path_factory):
    """URL of the shared MLflow tracking server (started by scripts/test.sh, else here)."""
    from services import MLflowServer

    url = os.environ.get("KFP_INTEROP_TEST_MLFLOW")
    server = None
    if not url:
        server = MLflowServer(str(tmp_path_factory.mktemp("mlflow"))).start()
        url = server.url
    yield url
    if server:
        server.stop()


@pytest.fixture
def kube():
    """An HTTP fake of the Kubernetes API (tests/kubefake.py), stopped after the test."""
    from kubefake import FakeKube

    fake = FakeKube()
    yield fake
    fake.close()
