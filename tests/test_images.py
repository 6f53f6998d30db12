"""The images as a cluster runs them (CI's container stage: `scripts/image.sh` builds
them first; run alone with `pytest -m containers`).

* both images: non-root, no compiler, `kfp-interop --version` says the package version;
  the serving image holds no training, conversion, PyTorch, MLflow or Flower;
* the full image runs a Flower federation (SuperLink with TLS, SuperNodes);
* every reference pipeline runs on its defaults with every task in the full image
  (`kfp-interop run NAME --local --runner docker`), as the image's user;
* the ServingRuntime's container (exact image, command and arguments of
  manifests/servingruntime.yaml, a Triton-layout repository mounted read-only at
  /mnt/models, a read-only root filesystem, uid 1000, all capabilities dropped) answers
  tritonclient and passes our smoke test;
* a missing image, an image of other code or one that cannot run tasks: each a typed
  error naming what to run (no engine at all: tests/test_runners.py).

Where no container engine answers the tests skip, saying so, unless
KFP_INTEROP_REQUIRE_CONTAINERS=1 (CI sets it after installing one): then they fail.
"""

import json
import os
import shutil
import subprocess
import time
import urllib.request

import pytest
import yaml
from conftest import ROOT
from test_pipeline import run_cli

from kfp_interop._version import __version__
from kfp_interop.components._common import IMAGE
from kfp_interop.constants import SERVING_IMAGE_REPOSITORY

SERVING_IMAGE = f"{SERVING_IMAGE_REPOSITORY}:{__version__}"
pytestmark = pytest.mark.containers
PIPELINES = ["tabular", "deep", "transfer-learning", "federated-learning", "warm-start",
             "onnx-import"]


@pytest.fixture(scope="module")
def engine():
    from kfp_interop.runs import containers
    from kfp_interop.errors import ContainerEngineError

    try:
        client = containers.engine()
    except ContainerEngineError as e:
        if os.environ.get("KFP_INTEROP_REQUIRE_CONTAINERS") == "1":
            raise
        pytest.skip(f"this machine cannot run containers: {e}")
    for image in (IMAGE, SERVING_IMAGE):
        try:
            client.images.get(image)
        except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound
            if os.environ.get("KFP_INTEROP_REQUIRE_CONTAINERS") == "1":
                raise
            pytest.skip(f"{image} is not built: bash scripts/image.sh")
    yield client
    client.close()


def in_image(client, image, command, **kwargs):
    from kfp_interop.runs import containers

    lines = []
    code = containers.run_task(client, image, command, {}, log=lines.append, **kwargs)
    return code, "".join(lines)


@pytest.mark.parametrize("image", [IMAGE, SERVING_IMAGE])
def test_the_images_run_as_non_root_hold_no_compiler_and_say_their_version(engine, image):
    code, out = in_image(engine, image, ["sh", "-c", "id -u; command -v gcc cc c++ || true; "
                                                    "kfp-interop --version"])
    assert code == 0, out
    lines = out.split()
    assert lines[0] == "1000" and lines[-2:] == ["kfp-interop", __version__], out
    assert not any("gcc" in x or x.endswith("/cc") or x.endswith("c++") for x in lines), out


def test_the_serving_image_holds_the_server_alone(engine):
    probe = ("import importlib.util as u; print([m for m in ('torch', 'mlflow', 'flwr', "
             "'sklearn', 'kfp', 'skl2onnx', 'onnxruntime', 'uvicorn') if u.find_spec(m)])")
    code, out = in_image(engine, SERVING_IMAGE, ["python", "-c", probe])
    assert code == 0 and out.strip() == "['onnxruntime', 'uvicorn']", out
    full = engine.images.get(IMAGE).attrs["Size"]
    serving = engine.images.get(SERVING_IMAGE).attrs["Size"]
    print(f"image sizes: full {full / 1e6:.0f} MB, serving {serving / 1e6:.0f} MB")
    assert serving < 0.6e9 < full


def test_the_image_runs_both_sides_of_a_flower_federation(engine):
    """What manifests/flower/ runs in the image: a SuperLink with TLS and SuperNodes
    (kfp-interop federation up --tls starts them and waits until every node is online;
    the ServerApp and ClientApp modules import)."""
    code, out = in_image(engine, IMAGE, ["sh", "-c",
                                         "python -c 'import kfp_interop.flower.app' && "
                                         "kfp-interop federation up --nodes 2 --tls "
                                         "--dir /tmp/federation && "
                                         "kfp-interop federation down --dir /tmp/federation"])
    assert code == 0, out
    assert "TLS, CA certificate /tmp/federation/tls/ca.crt" in out, out
    assert "stopped superlink" in out, out


@pytest.mark.parametrize("name", PIPELINES)
def test_every_reference_pipeline_runs_with_every_task_in_the_image(name, engine, tmp_path,
                                                                    iris_onnx):
    """On their defaults (onnx-import has none for its model: a file of this machine,
    mounted into its task read-only)."""
    out = tmp_path / "out"
    start = time.monotonic()
    extra = ["--param", f"model_uri={iris_onnx}"] if name == "onnx-import" else []
    proc = run_cli("run", name, "--local", "--runner", "docker", "--output-dir", str(out),
                   *extra)
    seconds = time.monotonic() - start
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert f"in containers of {IMAGE}" in proc.stdout
    s = json.loads((out / "summary.json").read_text())
    assert s["status"] == "succeeded", s
    assert s["parity"]["passed"] if name != "onnx-import" else s["parity"] is None, s
    assert s["smoke_test"]["passed"], s["smoke_test"]
    assert s["pipeline"] == name and "smoke test" in proc.stdout  # the printed summary
    # the tasks ran as the image's user, the output folder is handed back after
    assert os.stat(s["onnx_path"]).st_uid == os.geteuid()
    print(f"{name}: docker runner {seconds:.1f} s (pipeline {s['duration_s']} s)")


def test_the_same_model_bytes_from_the_image_as_from_this_environment(engine, tmp_path):
    """tabular on its defaults: the container's ONNX file is byte for byte the one the
    subprocess runner writes (same pins, same seed)."""
    sums = {}
    for runner in ("docker", "subprocess"):
        out = tmp_path / runner
        proc = run_cli("run", "tabular", "--local", "--runner", runner, "--output-dir",
                       str(out), "--param", "register=false")
        assert proc.returncode == 0, proc.stdout[-3000:]
        sums[runner] = json.loads((out / "summary.json").read_text())["onnx_sha256"]
    assert sums["docker"] == sums["subprocess"]


@pytest.fixture(scope="module")
def repository(tmp_path_factory, iris_model):
    from kfp_interop.cli import main

    repo = tmp_path_factory.mktemp("mnt-models")
    assert main(["upload", iris_model[0], "--to", str(repo), "--layout", "triton",
                 "--name", "iris-runtime"]) == 0
    os.chmod(repo, 0o755)
    for folder, dirs, files in os.walk(repo):
        for d in dirs:
            os.chmod(os.path.join(folder, d), 0o755)
        for f in files:
            os.chmod(os.path.join(folder, f), 0o644)
    return str(repo)


def test_the_servingruntime_container_serves_a_triton_layout_repository(engine, repository,
                                                                        iris_model):
    """manifests/servingruntime.yaml's container, as KServe starts it for an
    InferenceService named iris-runtime."""
    import socket

    import tritonclient.http as httpclient

    from kfp_interop.steps import endpoint_smoke_test

    runtime = yaml.safe_load(open(os.path.join(ROOT, "manifests", "servingruntime.yaml")))
    container = runtime["spec"]["containers"][0]
    assert container["image"] == SERVING_IMAGE
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and security["runAsNonRoot"]
    port = container["readinessProbe"]["httpGet"]["port"]
    grpc_port = int(container["args"][container["args"].index("--grpc-port") + 1])
    for taken in (port, grpc_port):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", taken)) == 0:
                pytest.fail(f"port {taken} (the ServingRuntime's) is taken on this machine")
    args = [a.replace("{{.Name}}", "iris-runtime") for a in container["args"]]
    env = {e["name"]: e["value"] for e in container["env"]}
    box = engine.containers.create(
        container["image"], command=args, environment=env, network_mode="host",
        user=str(security["runAsUser"]), read_only=security["readOnlyRootFilesystem"],
        cap_drop=security["capabilities"]["drop"], security_opt=["no-new-privileges"],
        volumes={repository: {"bind": "/mnt/models", "mode": "ro"}})
    try:
        box.start()
        url = f"127.0.0.1:{port}"
        probe = container["readinessProbe"]["httpGet"]["path"]
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://{url}{probe}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            box.reload()
            assert box.status == "running" and time.monotonic() < deadline, \
                box.logs().decode()[-3000:]
            time.sleep(0.3)
        client = httpclient.InferenceServerClient(url)
        assert client.is_server_ready() and client.is_model_ready("iris-runtime")
        meta = client.get_model_metadata("iris-runtime")
        assert [i["name"] for i in meta["inputs"]] == ["input"]
        x = httpclient.InferInput("input", [2, 4], "FP32")
        import numpy as np

        x.set_data_from_numpy(np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]],
                                       np.float32), binary_data=True)
        result = client.infer("iris-runtime", [x])
        assert result.as_numpy("probabilities").shape == (2, 3)
        report = endpoint_smoke_test(f"http://{url}", iris_model[0], sample=iris_model[2],
                                     name="iris-runtime")
        assert report["passed"]
        from oip_grpc import Client  # and gRPC on the runtime's other port

        assert Client(f"127.0.0.1:{grpc_port}").ready("iris-runtime")
        with urllib.request.urlopen(f"http://{url}/metrics", timeout=5) as r:
            assert b'nv_inference_request_success{model="iris-runtime",version="1"}' in r.read()
        box.reload()
        assert box.attrs["Config"]["User"] == "1000"
    finally:
        box.remove(force=True)


# -- bad input: typed errors naming what to run, never the docker SDK's traceback ------

def test_a_missing_image_or_one_that_cannot_run_tasks(engine, tmp_path):
    for image, said in (("localhost/kfp-interop-missing:0.0.0",
                         "is not in the container engine: build it with `bash "
                         "scripts/image.sh`"),
                        (SERVING_IMAGE, "cannot run pipeline tasks (is it the serving image?): `python` "
                         "failed in 'ghcr.io/kfp-interop/kfp-interop-serving:0.1.0' (exit 1): "
                         "ModuleNotFoundError: No module named 'kfp'")):
        proc = run_cli("run", "tabular", "--local", "--runner", "docker", "--image", image,
                       "--output-dir", str(tmp_path / "out"))
        text = proc.stdout + proc.stderr
        assert proc.returncode == 2 and said in text and "Traceback" not in text, text


def test_an_image_of_another_version(engine, tmp_path):
    """The full image with its version file changed: refused before any task runs."""
    from kfp_interop.runs import containers
    from kfp_interop.errors import ContainerImageError

    cli = shutil.which("podman") or shutil.which("docker")
    other = "localhost/kfp-interop-other:0.0.1"
    (tmp_path / "Containerfile").write_text(
        f"FROM {IMAGE}\nUSER 0\nRUN sed -i 's/^__version__ = .*/__version__ = \"0.0.1\"/' "
        "$(python -c 'import kfp_interop._version as v; print(v.__file__)')\nUSER 1000\n")
    subprocess.run([cli, "build", "-q", "-t", other, str(tmp_path)], check=True,
                   capture_output=True, timeout=300)
    try:
        with pytest.raises(ContainerImageError, match=r"holds kfp-interop 0\.0\.1, this code "
                                                      rf"is {__version__}: rebuild it"):
            containers.check_image(engine, other, __version__)
    finally:
        subprocess.run([cli, "rmi", "-f", other], capture_output=True)
