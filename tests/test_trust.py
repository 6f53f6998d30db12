"""Trust boundaries: a model file is data, a parameter is not code, a changed artifact
is caught by the hash that travelled beside it."""

import json
import os
import subprocess
import sys

import pytest

from kfp_interop.errors import (InvalidInputError, ModelFileError, UntrustedCodeError,
                                UntrustedModelError)


def test_every_builtin_estimator_loads_with_the_exact_type_list(tmp_path):
    """What our trainers produce needs no type beyond SKOPS_TRUSTED_TYPES (drift check:
    a scikit-learn or skops upgrade that adds one fails here, not in a user's run)."""
    import skops.io

    from kfp_interop.data import load_dataset, split_dataset
    from kfp_interop.frameworks import NativeModel, load_native, save_native
    from kfp_interop.frameworks.sklearn import SKOPS_TRUSTED_TYPES
    from kfp_interop.training import train_model

    seen = set()
    for dataset in ("iris", "diabetes"):
        train, test = split_dataset(load_dataset(dataset))
        for est in ("random_forest", "gradient_boosting", "logistic_regression",
                    "linear_regression"):
            try:
                result = train_model(train, test, estimator=est, scaler=True,
                                     hyperparameters={"n_estimators": 5} if "o" in est[:3]
                                     or est == "random_forest" else None)
            except InvalidInputError:
                continue  # the estimator does not do this task
            folder = tmp_path / f"{dataset}-{est}"
            save_native(NativeModel(result.model, "sklearn", train.task), str(folder))
            seen |= set(skops.io.get_untrusted_types(file=str(folder / "model.skops")))
            load_native(str(folder), framework="sklearn", task=train.task)
    assert seen <= SKOPS_TRUSTED_TYPES


def test_a_model_file_naming_other_callables_is_refused_not_built(tmp_path, monkeypatch):
    """numpy.testing's runstring is exec: a name under numpy is not a trusted type."""
    import numpy.testing._private.utils as np_utils
    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    from kfp_interop.frameworks import load_native

    skops.io.dump(FunctionTransformer(func=np_utils.runstring), str(tmp_path / "model.skops"))
    monkeypatch.delenv("KFP_INTEROP_TRUSTED_TYPES", raising=False)
    with pytest.raises(UntrustedModelError, match=r"numpy\.testing\._private\.utils\."
                                                  r"runstring.*KFP_INTEROP_TRUSTED_TYPES"):
        load_native(str(tmp_path), framework="sklearn", task="classification")
    # listed exactly by the operator, it loads (a prefix would not do)
    monkeypatch.setenv("KFP_INTEROP_TRUSTED_TYPES", "numpy.testing")
    with pytest.raises(UntrustedModelError):
        load_native(str(tmp_path), framework="sklearn", task="classification")
    monkeypatch.setenv("KFP_INTEROP_TRUSTED_TYPES", "numpy.testing._private.utils.runstring")
    native = load_native(str(tmp_path), framework="sklearn", task="classification")
    assert native.model.func is np_utils.runstring
    monkeypatch.delenv("KFP_INTEROP_TRUSTED_TYPES")
    assert load_native(str(tmp_path), framework="sklearn", task="classification",
                       trusted_types="numpy.testing._private.utils.runstring").model


def test_an_unreadable_skops_file_is_a_model_file_error(tmp_path):
    from kfp_interop.frameworks import load_native

    (tmp_path / "model.skops").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ModelFileError, match="not a readable skops model file"):
        load_native(str(tmp_path), framework="sklearn", task="classification")


@pytest.mark.parametrize("estimator,error,message", [
    ("os:abort", UntrustedCodeError, "module 'os' is not allowed"),
    ("this:s", UntrustedCodeError, "module 'this' is not allowed"),
    ("subprocess:Popen", UntrustedCodeError, "module 'subprocess' is not allowed"),
    ("sklearn.utils:Bunch", InvalidInputError, "is not a scikit-learn estimator class"),
    ("sklearn.base:clone", InvalidInputError, "is not a scikit-learn estimator class"),
    ("sklearn:svm.SVC", InvalidInputError, "must look like 'module:Class'"),
])
def test_a_parameter_names_no_code_outside_the_allowlist(estimator, error, message):
    """Refused before anything is imported or called (``this`` prints at import,
    ``os.abort`` kills the process)."""
    code = ("import sys\nfrom kfp_interop.data import load_dataset, split_dataset\n"
            "from kfp_interop.training import train_model\n"
            "tr, te = split_dataset(load_dataset('iris'))\n"
            f"try:\n    train_model(tr, te, estimator={estimator!r})\n"
            "except Exception as e:\n"
            "    print(type(e).__name__, '|', e, '|', 'this' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    name, text, imported = proc.stdout.strip().split(" | ")
    assert issubclass(getattr(sys.modules["kfp_interop.errors"], name), error)
    assert message in text and imported == "False"
    assert "Zen of Python" not in proc.stdout + proc.stderr


def test_allowed_modules_come_from_the_operator_setting(monkeypatch):
    from sklearn.base import BaseEstimator

    from kfp_interop.trust import allowed_modules, import_class

    monkeypatch.setenv("KFP_INTEROP_ALLOWED_MODULES", "json, deep_models")
    assert allowed_modules()[-2:] == ("json", "deep_models")
    with pytest.raises(InvalidInputError, match="is not a scikit-learn"):
        import_class("json:JSONDecoder", base=BaseEstimator, base_name="scikit-learn")
    monkeypatch.setenv("KFP_INTEROP_ALLOWED_MODULES", "")
    with pytest.raises(UntrustedCodeError):
        import_class("json:JSONDecoder", base=object)
    # "sklearnx" is not inside "sklearn"
    with pytest.raises(UntrustedCodeError):
        import_class("sklearnx.evil:Model", base=object)


def test_a_checkpoint_spec_cannot_name_code_either(tmp_path, monkeypatch):
    from kfp_interop.frameworks import NativeModel, load_native, save_native
    from kfp_interop.frameworks.torch import TorchSpec, build_torch_model

    spec = TorchSpec("mlp", 4, 3)
    save_native(NativeModel(build_torch_model(spec), "torch", "classification", spec),
                str(tmp_path))
    spec_file = tmp_path / "architecture.json"
    spec_file.write_text(json.dumps({**json.loads(spec_file.read_text()),
                                     "architecture": "subprocess:Popen"}))
    with pytest.raises(UntrustedCodeError, match="'subprocess' is not allowed"):
        load_native(str(tmp_path), framework="torch", task="classification")


def test_a_changed_artifact_is_caught_by_the_hash_that_travelled_beside_it(iris_model,
                                                                           tmp_path):
    """The attacker rewrites the model file and the hash inside the folder; the hash the
    training step returned (an output parameter) still catches it."""
    import shutil

    from kfp_interop.files import atomic_write_json, sha256_file
    from kfp_interop.steps import export_onnx_step, train_step

    _, _, test_path = iris_model
    train_path = os.path.join(os.path.dirname(test_path), "train.parquet")
    meta, _ = train_step(train_path=train_path, test_path=test_path,
                         model_dir=str(tmp_path / "a"))
    returned = meta.native_sha256
    export_onnx_step(model_dir=str(tmp_path / "a"), test_path=test_path, native_sha256=returned,
                out_dir=str(tmp_path / "ok"))
    other, _ = train_step(train_path=train_path, test_path=test_path, seed=7,
                          hyperparameters='{"n_estimators": 3}', model_dir=str(tmp_path / "b"))
    shutil.copy(tmp_path / "b" / "model.skops", tmp_path / "a" / "model.skops")
    atomic_write_json(tmp_path / "a" / "model_meta.json",
                      {**meta.to_dict(), "native_sha256": sha256_file(tmp_path / "a" / "model.skops")})
    with pytest.raises(ModelFileError, match="changed after training"):
        export_onnx_step(model_dir=str(tmp_path / "a"), test_path=test_path,
                    native_sha256=returned, out_dir=str(tmp_path / "bad"))
    assert not (tmp_path / "bad" / "model.onnx").exists()


# -- paths stay inside -------------------------------------------------------------------
def _tamper_manifest(path, **objects):
    manifest = json.loads(open(path).read())
    manifest["objects"].update(objects)
    open(path, "w").write(json.dumps(manifest))


@pytest.mark.parametrize("key", ["iris/../../escaped.txt", "../escaped.txt",
                                 "iris//escaped.txt", "/etc/escaped.txt",
                                 "other/escaped.txt", "iris/..\\escaped.txt"])
def test_a_manifest_cannot_write_outside_the_download_folder(iris_onnx, tmp_path, key):
    from kfp_interop.errors import StorageIntegrityError
    from kfp_interop.storage import download, upload

    repo = tmp_path / "repo"
    result = upload(iris_onnx, str(repo))
    _tamper_manifest(repo / "iris" / "kfp-interop-manifest.json", **{key: {"sha256": "0"}})
    dest = tmp_path / "deep" / "dest"
    with pytest.raises(StorageIntegrityError, match="outside the model folder"):
        download(result["model_uri"], str(dest))
    assert not list(tmp_path.rglob("escaped.txt"))


def test_a_manifest_in_s3_cannot_either(iris_onnx, s3_env, tmp_path):
    import io
    import uuid

    from kfp_interop.errors import StorageIntegrityError
    from kfp_interop.storage import S3Settings, download, upload

    settings = S3Settings.from_env(s3_env)
    bucket = f"trust-{uuid.uuid4().hex[:8]}"
    client = settings.client()
    client.make_bucket(bucket)
    result = upload(iris_onnx, f"s3://{bucket}/repo", settings=settings)
    key = "repo/iris/kfp-interop-manifest.json"
    manifest = json.loads(client.get_object(bucket, key).read())
    manifest["objects"]["iris/../../escaped.txt"] = manifest["objects"]["iris/config.pbtxt"]
    body = json.dumps(manifest).encode()
    client.put_object(bucket, key, io.BytesIO(body), len(body))
    with pytest.raises(StorageIntegrityError, match="outside the model folder"):
        download(result["model_uri"], str(tmp_path / "dest"), settings=settings)
    assert not list(tmp_path.rglob("escaped.txt"))


def test_a_symlink_in_a_folder_store_cannot_lead_out(iris_onnx, tmp_path):
    from kfp_interop.storage import download, upload

    outside = tmp_path / "outside"
    outside.mkdir()
    repo = tmp_path / "repo"
    result = upload(iris_onnx, str(repo))
    os.symlink(outside, repo / "iris" / "link")
    _tamper_manifest(repo / "iris" / "kfp-interop-manifest.json",
                     **{"iris/link/secret.txt": {"sha256": "0" * 64}})
    (outside / "secret.txt").write_text("not yours")
    with pytest.raises(InvalidInputError, match="resolves outside"):
        download(result["model_uri"], str(tmp_path / "dest"))
    assert not (tmp_path / "dest" / "link").exists()


def test_a_version_cannot_name_a_path(iris_onnx, tmp_path):
    from kfp_interop.storage import upload

    with pytest.raises(InvalidInputError, match="'../../x': a positive integer"):
        upload(iris_onnx, str(tmp_path / "repo"), version="../../x")
    assert not list(tmp_path.rglob("model.onnx"))


def test_onnx_files_with_external_data_or_an_invalid_graph_are_refused(iris_onnx, tmp_path):
    import onnx

    from kfp_interop.metadata import load_metadata
    from kfp_interop.onnx_model import ort_session, read_onnx
    from kfp_interop.serving import start_server

    from onnx import TensorProto, helper, numpy_helper

    import numpy as np

    weights = numpy_helper.from_array(np.ones((4, 3), np.float32), "weights")
    model = helper.make_model(helper.make_graph(
        [helper.make_node("MatMul", ["input", "weights"], ["scores"])], "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 3])], [weights]),
        opset_imports=[helper.make_opsetid("", 17)])
    (tmp_path / "sub").mkdir()
    onnx.save_model(model, str(tmp_path / "sub" / "ext.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    # and one whose external data points out of its folder, written by hand (onnx's own
    # writer refuses such a location; an attacker's does not)
    hostile = onnx.load(str(tmp_path / "sub" / "ext.onnx"), load_external_data=False)
    for entry in hostile.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = "../../../../etc/passwd"
    (tmp_path / "sub" / "hostile.onnx").write_bytes(hostile.SerializeToString())
    for name in ("ext.onnx", "hostile.onnx"):
        for call in (read_onnx, load_metadata, ort_session, start_server):
            with pytest.raises(ModelFileError, match="external files"):
                call(str(tmp_path / "sub" / name))
    broken = onnx.load(iris_onnx)
    broken.graph.node[0].input[0] = "no_such_tensor"
    onnx.save(broken, str(tmp_path / "broken.onnx"))
    with pytest.raises(ModelFileError, match="not a valid ONNX model"):
        read_onnx(str(tmp_path / "broken.onnx"))
