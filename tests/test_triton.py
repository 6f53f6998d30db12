"""A real Triton Inference Server (2.51, CPU; tests/triton_server) reads what `kfp-interop
upload --layout triton` writes: a tabular classifier, a regressor, the digits CNN, a
table with text columns (BYTES inputs) and an adopted two-input model all load (ready),
the metadata Triton serves from its own config parser matches our record's OIP
rendering, and our smoke test passes against Triton. On broken repositories
`validate-repo` and Triton agree: both refuse.

Triton's ONNX Runtime backend is not in the wheel; a Python-based stand-in runs the graph
(tests/triton_server/onnxruntime/model.py). What Triton itself decides here: the repository
layout, the config.pbtxt parse, name and version folders, the served metadata, the
protocol. What the stand-in decides (as the real backend does): the configured tensors
against the graph.
"""

import json
import os
import shutil
import time

import numpy as np
import pytest
from conftest import ROOT, build_model
from test_adopt import two_inputs_model

from triton_server.server import Triton, TritonLoadError, available

pytestmark = pytest.mark.skipif(bool(available()), reason=available() or "")

MODELS = ("iris-triton", "diabetes-triton", "digits-triton", "customers-triton",
          "two-inputs-triton")


def upload(model: str, repo: str, name: str) -> None:
    from kfp_interop.cli import main

    assert main(["upload", model, "--to", repo, "--layout", "triton", "--name", name]) == 0


def _deep(tmp):
    from kfp_interop.steps import (attach_metadata_step, export_onnx_step, load_data_step,
                                   train_deep_step)

    paths = {k: str(tmp / k) for k in ("train", "test", "native", "exported", "model")}
    load_data_step(dataset="digits", train_path=paths["train"], test_path=paths["test"])
    train_deep_step(train_path=paths["train"], test_path=paths["test"], architecture="cnn",
                    epochs=2, model_dir=paths["native"])
    export_onnx_step(model_dir=paths["native"], test_path=paths["test"],
                out_dir=paths["exported"])
    attach_metadata_step(model_dir=paths["exported"], model_name="digits",
                         out_dir=paths["model"])
    return paths["model"], paths["test"]


def _two_inputs(tmp):
    import onnx

    from kfp_interop.steps import adopt_onnx_step

    # IR 8: Triton 2.51's ONNX Runtime loads IR <= 10 (the stand-in's 1.23: <= 11);
    # onnx 1.23 writes IR 14 unless told
    model = two_inputs_model(ir_version=8)
    model.producer_name = "handmade"
    tmp.mkdir(parents=True, exist_ok=True)
    path = str(tmp / "two_inputs.onnx")
    onnx.save(model, path)
    sample = str(tmp / "sample.npz")
    np.savez(sample, x=np.arange(12, dtype=np.float32).reshape(4, 3),
             ids=np.arange(8, dtype=np.int64).reshape(4, 2))
    adopt_onnx_step(model_path=path, sample_path=sample, out_dir=str(tmp / "adopted"))
    return str(tmp / "adopted"), sample


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name -> (model folder, sample for the smoke test), each uploaded to one Triton
    repository by `kfp-interop upload --layout triton`."""
    tmp = tmp_path_factory.mktemp("triton-models")
    out = {}
    iris, _, iris_test = build_model(tmp / "iris", name="iris")
    out["iris-triton"] = (iris, iris_test)
    diabetes, _, diabetes_test = build_model(tmp / "diabetes", dataset="diabetes",
                                             framework="xgboost", estimator="")
    out["diabetes-triton"] = (diabetes, diabetes_test)
    out["digits-triton"] = _deep(tmp / "digits")
    customers, _, customers_test = build_model(
        tmp / "customers", dataset=os.path.join(ROOT, "examples", "own_training",
                                                "customers.csv"),
        target_column="churned")
    out["customers-triton"] = (customers, customers_test)
    out["two-inputs-triton"] = _two_inputs(tmp / "two")
    repo = str(tmp / "repository")
    for name, (model, _) in out.items():
        upload(model, repo, name)
    return repo, out


@pytest.fixture(scope="module")
def triton(models):
    with Triton(models[0]) as server:
        yield server


@pytest.mark.parametrize("name", MODELS)
def test_triton_loads_serves_and_passes_our_smoke_test(name, models, triton):
    from kfp_interop.metadata import load_metadata
    from kfp_interop.metadata.render import render
    from kfp_interop.onnx_model import find_onnx
    from kfp_interop.steps import endpoint_smoke_test

    model, sample = models[1][name]
    seconds = triton.load(name)
    assert triton.ready(name), triton.log_text()[-2000:]
    print(f"Triton {Triton.VERSION} loaded {name} in {seconds:.2f} s")
    record = load_metadata(find_onnx(model))
    ours = render(record, "oip")
    served = triton.metadata(name)
    assert served["name"] == name and served["platform"] == ours["platform"]
    assert served["versions"] == ours["versions"]
    assert served["inputs"] == ours["inputs"] and served["outputs"] == ours["outputs"]
    report = endpoint_smoke_test(triton.url, model, sample=sample, name=name)
    assert report["passed"] and report["checks"]["inference"]["passed"]
    assert report["max_abs_diff"] <= 1e-4


def test_the_smoke_test_cli_fails_against_triton_serving_another_model(models, triton,
                                                                       capsys):
    """`kfp-interop smoke-test` against Triton: with the right file (no sample: rows drawn
    from the record's inputs) exit 0; pointed at Triton's iris with the regressor's file,
    the metadata differs: exit 1 with the report."""
    from kfp_interop.cli import main

    triton.load("iris-triton")
    assert main(["smoke-test", triton.url, models[1]["iris-triton"][0], "--name",
                 "iris-triton"]) == 0
    assert "PASSED: 'iris-triton'" in capsys.readouterr().out
    code = main(["smoke-test", triton.url, models[1]["diabetes-triton"][0], "--name",
                 "iris-triton", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["passed"] is False
    assert report["checks"]["metadata"]["passed"] is False


def _with_ir(path, ir_version: int) -> None:
    import onnx

    model = onnx.load(str(path))
    model.ir_version = ir_version
    onnx.save(model, str(path))


def _broken(repo: str, tmp, how: str) -> str:
    """A one-model repository copied from iris-triton and broken one way."""
    root = tmp / how
    folder = root / "iris-triton"
    shutil.copytree(os.path.join(repo, "iris-triton"), folder)
    config = folder / "config.pbtxt"
    text = config.read_text()
    if how == "renamed-folder":
        folder.rename(root / "iris-renamed")
    elif how == "wrong-dims":
        config.write_text(text.replace("dims: [ -1, 4 ]", "dims: [ -1, 5 ]", 1))
    elif how == "no-version-folder":
        shutil.rmtree(folder / "1")
    elif how == "syntax-error":
        config.write_text(text.replace("input [", "input [[", 1))
    elif how == "ir-version-14":  # what onnx 1.23's make_model writes unless told
        _with_ir(folder / "1" / "model.onnx", 14)
    return str(root)


@pytest.mark.parametrize("how", ["renamed-folder", "wrong-dims", "no-version-folder",
                                 "syntax-error", "ir-version-14"])
def test_validate_repo_and_triton_agree_on_broken_repositories(how, models, tmp_path):
    from kfp_interop.storage import validate_repository

    root = _broken(models[0], tmp_path, how)
    name = os.listdir(root)[0]
    problems = validate_repository(root)["problems"]
    assert problems, f"validate-repo accepted a repository with a {how}"
    with Triton(root) as server:
        with pytest.raises(TritonLoadError) as refused:
            server.load(name)
        assert not server.ready(name)
    print(f"{how}: validate-repo: {problems[0]}; Triton: {refused.value}")


def test_the_intact_copy_loads(models, tmp_path):
    """The control for the broken cases: the same copy, unbroken, loads."""
    from kfp_interop.storage import validate_repository

    root = _broken(models[0], tmp_path, "intact")
    assert validate_repository(root)["problems"] == []
    with Triton(root) as server:
        start = time.monotonic()
        server.load("iris-triton")
        assert server.ready("iris-triton") and time.monotonic() - start < 60


def test_a_record_with_dynamic_batching_loads_in_triton_and_round_trips(models, tmp_path):
    """The record's serving.dynamic_batching becomes Triton's max_batch_size (dims
    without the batch; a tensor with nothing but the batch as dims [1] reshaped to [])
    and dynamic_batching block: Triton loads it, serves the record's tensors, batches
    concurrent requests (the stand-in merges them as the C++ backend does); importing the
    config gives the block back; validate-repo agrees."""
    import concurrent.futures

    from kfp_interop.metadata import load_metadata, save_metadata
    from kfp_interop.metadata.importers import import_metadata
    from kfp_interop.metadata.render import render
    from kfp_interop.onnx_model import find_onnx, read_onnx
    from kfp_interop.storage import validate_repository

    model, _ = models[1]["iris-triton"]  # outputs label [-1] and probabilities [-1, 3]
    path = find_onnx(model)
    block = {"max_batch_size": 16, "max_queue_delay_us": 20000,
             "preferred_batch_sizes": [4, 8]}
    record = load_metadata(path).replace(serving={"dynamic_batching": block})
    batched = tmp_path / "batched" / "model.onnx"
    batched.parent.mkdir()
    save_metadata(record, read_onnx(path), str(batched))
    config = render(record, "triton")
    assert "max_batch_size: 16" in config and "reshape: { shape: [ ] }" in config
    assert "max_queue_delay_microseconds: 20000" in config
    config_file = tmp_path / "config.pbtxt"
    config_file.write_text(config)
    assert import_metadata(str(config_file), "triton").serving == {"dynamic_batching": block}
    repo = tmp_path / "repo"
    upload(str(batched), str(repo), "iris-batched")
    assert validate_repository(str(repo))["problems"] == []
    X = np.array([[5.1, 3.5, 1.4, 0.2], [6.0, 2.9, 4.5, 1.5], [6.9, 3.1, 5.4, 2.1]],
                 np.float32)
    from kfp_interop.onnx_model import ort_session

    want = ort_session(path).run(None, {"input": X})
    with Triton(str(repo)) as server:
        server.load("iris-batched")
        served = server.metadata("iris-batched")
        assert served["inputs"] == record.inputs
        # Triton shows a reshaped tensor by its config dims: label [-1] as [-1, 1]
        assert served["outputs"] == [{**t, "shape": t["shape"] if len(t["shape"]) > 1
                                      else [-1, 1]} for t in record.outputs]
        import tritonclient.http as httpclient

        def infer(i):
            client = httpclient.InferenceServerClient(server.url.split("//", 1)[1])
            x = httpclient.InferInput("input", [1, 4], "FP32")
            x.set_data_from_numpy(X[i:i + 1])
            return client.infer("iris-batched", [x]).as_numpy("probabilities")

        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            got = list(pool.map(infer, range(3)))
        np.testing.assert_allclose(np.concatenate(got), want[1], rtol=1e-6)
