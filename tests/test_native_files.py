"""Model files made outside kfp-interop (scikit-learn through skops, XGBoost JSON/UBJ,
LightGBM text, a PyTorch state dict with its class or a torch.export program, Keras,
TensorFlow SavedModels and Keras on the TensorFlow backend) enter through
`kfp-interop export`: converted behind the parity gate, described by the record, and then
served and smoke-tested like ours. Bad files and samples fail by name and write
nothing."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from kfp_interop.cli import main
from kfp_interop.errors import (DatasetError, InvalidInputError, ModelFileError,
                                UntrustedModelError)
from kfp_interop.metadata import load_metadata, verify_onnx_sha256
from kfp_interop.steps import export_file_step

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Native files written by each framework's own API (no code of ours), and samples."""
    import lightgbm as lgb
    import skops.io
    import torch
    import xgboost as xgb
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_diabetes, load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from deep_models import TinyNet

    d = tmp_path_factory.mktemp("native")
    iris = load_iris(as_frame=True).frame
    X, y = iris.drop(columns="target"), iris.target
    iris.to_csv(d / "iris.csv", index=False)
    np.save(d / "iris.npy", X.to_numpy()[:30])
    mixed = X.copy()
    mixed["color"] = np.random.default_rng(0).choice(["red", "green", "blue"], len(X))
    mixed["species"] = np.array(["setosa", "versicolor", "virginica"])[y]
    mixed.to_csv(d / "mixed.csv", index=False)
    pipe = Pipeline([
        ("columns", ColumnTransformer([
            ("text", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["color"]),
            ("numbers", StandardScaler(), list(X.columns))])),
        ("model", LogisticRegression(max_iter=500))]).fit(mixed.drop(columns="species"),
                                                         mixed.species)
    skops.io.dump(pipe, d / "pipeline.skops")
    booster = xgb.train({"objective": "multi:softprob", "num_class": 3, "nthread": 1},
                        xgb.DMatrix(X.to_numpy(), y), 10)
    booster.save_model(d / "booster.json")
    booster.save_model(d / "booster.ubj")
    diabetes = load_diabetes(as_frame=True).frame
    diabetes.to_parquet(d / "diabetes.parquet")
    lgb.train({"objective": "regression", "verbosity": -1, "num_threads": 1},
              lgb.Dataset(diabetes.drop(columns="target").to_numpy(), diabetes.target),
              20).save_model(d / "booster.txt")
    torch.manual_seed(0)
    net = TinyNet(4, 3, width=8).eval()
    torch.save(net.state_dict(), d / "tiny.pt")
    torch.save(net, d / "whole_module.pt")  # a pickled module: refused
    program = torch.export.export(net, (torch.zeros(2, 4),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, d / "tiny.pt2")
    return d


def export(tmp_path, model, *args):
    out = tmp_path / "out"
    code = main(["export", str(model), *args, "--output-dir", str(out)])
    return code, out


@pytest.mark.parametrize("model,args,fmt,labels,max_diff", [
    ("pipeline.skops", ["--framework", "sklearn", "--sample", "mixed.csv",
                        "--target-column", "species"], "skops",
     ["setosa", "versicolor", "virginica"], 1e-6),
    ("booster.json", ["--framework", "xgboost", "--sample", "iris.csv",
                      "--target-column", "target"], "xgboost-json", ["0", "1", "2"], 1e-6),
    ("booster.ubj", ["--framework", "xgboost", "--sample", "iris.npy", "--labels",
                     "setosa,versicolor,virginica"], "xgboost-ubj",
     ["setosa", "versicolor", "virginica"], 1e-6),
    ("booster.txt", ["--framework", "lightgbm", "--sample", "diabetes.parquet",
                     "--target-column", "target"], "lightgbm-text", None, 1e-4),
    ("tiny.pt", ["--framework", "torch", "--sample", "iris.csv", "--target-column", "target",
                 "--architecture", "deep_models:TinyNet", "--init-args", '{"width": 8}'],
     "torch-state-dict", ["0", "1", "2"], 1e-6),
    ("tiny.pt2", ["--framework", "torch", "--sample", "iris.npy"], "torch-export",
     ["0", "1", "2"], 1e-6),
])
def test_native_files_from_elsewhere_are_exported_with_parity(files, tmp_path, model, args,
                                                              fmt, labels, max_diff):
    args = [a if not os.path.exists(files / a) else str(files / a) for a in args]
    code, out = export(tmp_path, files / model, *args)
    assert code == 0
    record = verify_onnx_sha256(str(out / "model.onnx"))
    assert record.origin == {"kind": "exported", "source": model, "format": fmt}
    assert record.parity["passed"] and record.parity["max_abs_diff"] <= max_diff
    assert record.parity["n_rows"] >= 30
    assert record.class_labels == labels
    assert record.training is None  # trained elsewhere: nothing claimed about it
    assert os.path.isfile(out / "sample.npz") and os.path.isfile(out / "model.metadata.json")


def test_mixed_pipeline_takes_one_named_input_per_column(files, tmp_path):
    """skl2onnx makes identifiers of column names; the graph takes the table's names."""
    code, out = export(tmp_path, files / "pipeline.skops", "--framework", "sklearn",
                       "--sample", str(files / "mixed.csv"), "--target-column", "species")
    assert code == 0
    record = load_metadata(str(out / "model.onnx"))
    assert [(i["name"], i["datatype"]) for i in record.inputs] == [
        ("sepal length (cm)", "FP32"), ("sepal width (cm)", "FP32"),
        ("petal length (cm)", "FP32"), ("petal width (cm)", "FP32"), ("color", "BYTES")]
    assert record.framework["estimator"] == (
        "Pipeline(ColumnTransformer, LogisticRegression)")


def test_exported_file_is_served_and_smoke_tested(files, tmp_path):
    """After export, the model is served and smoke-tested on the sample kept beside it."""
    from kfp_interop.export.adopt import load_tensors
    from kfp_interop.serving import start_server, stop_server
    from kfp_interop.serving.smoke import smoke_test

    code, out = export(tmp_path, files / "pipeline.skops", "--framework", "sklearn",
                       "--sample", str(files / "mixed.csv"), "--target-column", "species",
                       "--name", "churn-pipeline")
    assert code == 0
    handle = start_server(str(out / "model.onnx"))
    try:
        report = smoke_test(handle.endpoint, str(out / "model.onnx"),
                            load_tensors(str(out / "sample.npz")))
        assert report["passed"] and report["model"] == "churn-pipeline"
        assert report["rows"] == 8
    finally:
        stop_server(handle.pid)


def test_wrong_format_for_the_framework_is_named(files, tmp_path):
    for model, framework in (("booster.json", "lightgbm"), ("booster.txt", "xgboost"),
                             ("tiny.pt", "sklearn"), ("iris.csv", "keras")):
        with pytest.raises(ModelFileError, match=model.replace(".", r"\.")):
            export_file_step(model_path=str(files / model), framework=framework,
                             sample_path=str(files / "iris.csv"), target_column="target",
                             out_dir=str(tmp_path / "out"))
        assert not (tmp_path / "out").exists()


def test_sample_that_does_not_fit_the_model_is_named(files, tmp_path):
    with pytest.raises(InvalidInputError, match=r"takes 4 features.*10 columns"):
        export_file_step(model_path=str(files / "booster.json"), framework="xgboost",
                         sample_path=str(files / "diabetes.parquet"),
                         target_column="target", out_dir=str(tmp_path / "out"))
    # the pipeline names its columns: a sample without them is refused by name
    with pytest.raises(InvalidInputError, match=r"lacks \['color'\]"):
        export_file_step(model_path=str(files / "pipeline.skops"), framework="sklearn",
                         sample_path=str(files / "iris.csv"), target_column="target",
                         out_dir=str(tmp_path / "out"))
    with pytest.raises(DatasetError, match="no target column 'label'"):
        export_file_step(model_path=str(files / "booster.json"), framework="xgboost",
                         sample_path=str(files / "iris.csv"), target_column="label",
                         out_dir=str(tmp_path / "out"))
    with pytest.raises(InvalidInputError, match="names 2 classes"):
        export_file_step(model_path=str(files / "booster.json"), framework="xgboost",
                         sample_path=str(files / "iris.npy"), labels="a,b",
                         out_dir=str(tmp_path / "out"))
    with pytest.raises(InvalidInputError, match="holds a classification model, not regression"):
        export_file_step(model_path=str(files / "booster.json"), framework="xgboost",
                         sample_path=str(files / "iris.npy"), task="regression",
                         out_dir=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_torch_class_that_does_not_load_the_state_dict_is_named(files, tmp_path):
    with pytest.raises(ModelFileError, match="does not load into deep_models:TinyNet"):
        export_file_step(model_path=str(files / "tiny.pt"), framework="torch",
                         sample_path=str(files / "iris.npy"),
                         architecture="deep_models:TinyNet", init_args='{"width": 16}',
                         out_dir=str(tmp_path / "out"))
    with pytest.raises(InvalidInputError, match="--architecture module:Class"):
        export_file_step(model_path=str(files / "tiny.pt"), framework="torch",
                         sample_path=str(files / "iris.npy"), out_dir=str(tmp_path / "out"))
    with pytest.raises(ModelFileError, match="not a state dict of tensors"):
        export_file_step(model_path=str(files / "whole_module.pt"), framework="torch",
                         sample_path=str(files / "iris.npy"),
                         architecture="deep_models:TinyNet", out_dir=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_a_program_with_a_fixed_batch_is_named(files, tmp_path):
    import torch

    from deep_models import TinyNet
    from kfp_interop.errors import ExportError

    torch.export.save(torch.export.export(TinyNet(4, 3).eval(), (torch.zeros(1, 4),)),
                      tmp_path / "static.pt2")
    with pytest.raises(ExportError, match="fixed batch size.*dynamic_shapes"):
        export_file_step(model_path=str(tmp_path / "static.pt2"), framework="torch",
                         sample_path=str(files / "iris.npy"), out_dir=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_program_archive_that_would_unpickle_code_is_refused(files, tmp_path):
    """torch.export.load unpickles pickled weights with weights_only=False: a crafted .pt2
    runs code. Ours refuses it before loading, and the payload never runs."""
    import pickle

    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pt2"
    with zipfile.ZipFile(files / "tiny.pt2") as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("model_weights_config.json"):
                config = json.loads(data)
                first = next(iter(config["config"].values()))
                first["use_pickle"] = True
                data = json.dumps(config).encode()
                folder = os.path.dirname(item.filename)
                dst.writestr(os.path.join(folder, first["path_name"] + "_evil"),
                             pickle.dumps(_Payload(marker)))
                first["path_name"] += "_evil"
                data = json.dumps(config).encode()
            dst.writestr(item, data)
    with pytest.raises(UntrustedModelError, match="more than tensors"):
        export_file_step(model_path=str(evil), framework="torch",
                         sample_path=str(files / "iris.npy"), out_dir=str(tmp_path / "out"))
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_pickle_and_untrusted_skops_files_are_refused(files, tmp_path):
    import pickle

    from sklearn.linear_model import LogisticRegression

    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(pickle.dumps(LogisticRegression()))
    with pytest.raises(ModelFileError, match="pickle and joblib files are refused"):
        export_file_step(model_path=str(pickled), framework="sklearn",
                         sample_path=str(files / "iris.csv"), target_column="target",
                         out_dir=str(tmp_path / "out"))
    import numpy.testing._private.utils as np_utils
    import skops.io
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    # a Pipeline naming another callable (numpy.testing's runstring is exec)
    odd = tmp_path / "odd.skops"
    skops.io.dump(make_pipeline(FunctionTransformer(func=np_utils.runstring),
                                LogisticRegression()), odd)
    with pytest.raises(UntrustedModelError, match=r"runstring.*KFP_INTEROP_TRUSTED_TYPES"):
        export_file_step(model_path=str(odd), framework="sklearn",
                         sample_path=str(files / "iris.csv"), target_column="target",
                         out_dir=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_keras_file_on_the_torch_backend(files, tmp_path):
    """A .keras file, classifier and regressor (one output column), through Keras' own
    ONNX export on the backend this process runs."""
    from kfp_interop.frameworks.keras import keras_backend

    keras = keras_backend("torch")

    keras.utils.set_random_seed(0)
    for name, width, task in (("clf.keras", 3, "classification"), ("reg.keras", 1,
                                                                    "regression")):
        layers = [keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                  keras.layers.Dense(width, activation="softmax" if width > 1 else None)]
        keras.Sequential(layers).save(tmp_path / name)
        out = tmp_path / name.split(".")[0]
        record = export_file_step(model_path=str(tmp_path / name), framework="keras",
                                  sample_path=str(files / "iris.npy"), out_dir=str(out))
        assert record.task == task and record.parity["passed"]
        assert record.origin["format"] == "keras"


TF_SCRIPT = r"""
import os, sys
os.environ["KERAS_BACKEND"] = "tensorflow"
import numpy as np, tensorflow as tf, keras
d = sys.argv[1]
keras.utils.set_random_seed(0)
m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                      keras.layers.Dense(3, activation="softmax")])
m.save(os.path.join(d, "tf_backend.keras"))
m.export(os.path.join(d, "keras_export"))        # Keras' SavedModel (serving_default)

class Logits(tf.Module):                           # a plain tf.Module returning logits
    def __init__(self):
        self.w = tf.Variable(tf.random.normal([4, 3], seed=1))
        self.b = tf.Variable(tf.zeros([3]))
    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
    def __call__(self, x):
        return {"logits": x @ self.w + self.b}

class Reader(tf.Module):                           # a graph that reads a file when run
    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def __call__(self, x):
        return {"y": x * tf.strings.to_number(tf.io.read_file("/etc/hostname"))}

for name, module in (("logits", Logits()), ("reader", Reader())):
    tf.saved_model.save(module, os.path.join(d, name),
                        signatures={"serving_default": module.__call__})
"""


@pytest.fixture(scope="module")
def tf_models(tmp_path_factory):
    """SavedModels and a .keras file written by TensorFlow in its own process (this
    process runs Keras on torch)."""
    d = tmp_path_factory.mktemp("tensorflow")
    subprocess.run([sys.executable, "-c", TF_SCRIPT, str(d)], check=True,
                   capture_output=True, timeout=300)
    return d


def run_cli(*args):
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    return subprocess.run([sys.executable, "-m", "kfp_interop.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("model,estimator", [
    ("keras_export", "tf.SavedModel(serving_default: keras_tensor -> output_0)"),
    ("logits", "tf.SavedModel(serving_default: features -> logits)"),
    ("tf_backend.keras", "keras.Sequential"),
])
def test_tensorflow_models_through_tf2onnx(tf_models, files, tmp_path, model, estimator):
    out = tmp_path / "out"
    done = run_cli("export", str(tf_models / model), "--framework", "tensorflow",
                   "--sample", str(files / "iris.csv"), "--target-column", "target",
                   "--output-dir", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    record = load_metadata(str(out / "model.onnx"))
    assert record.framework["name"] == "tensorflow"
    assert record.framework["estimator"] == estimator
    assert record.parity["passed"] and record.parity["max_abs_diff"] < 1e-6
    assert record.parity["n_rows"] == 150
    # a logits graph gets its softmax: probabilities sum to one in ONNX Runtime
    from kfp_interop.onnx_model import ort_session

    probs = ort_session(str(out / "model.onnx")).run(
        ["probabilities"], {"input": np.load(files / "iris.npy").astype(np.float32)})[0]
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_tensorflow_graph_that_reads_files_is_refused(tf_models, files, tmp_path):
    done = run_cli("export", str(tf_models / "reader"), "--framework", "tensorflow",
                   "--sample", str(files / "iris.npy"), "--output-dir", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "holds op(s) ['ReadFile']" in done.stderr
    assert not (tmp_path / "out").exists()


def test_an_onnx_file_from_the_tf2onnx_command_line_is_adopted(tf_models, files, tmp_path):
    """tf2onnx's own command line (no code of ours) converts the SavedModel; adopt
    describes it from its graph and, given TensorFlow's own outputs, proves parity."""
    converted = tmp_path / "logits.onnx"
    done = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model",
                           str(tf_models / "logits"), "--output", str(converted),
                           "--opset", "17"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = np.load(files / "iris.npy").astype(np.float32)
    np.savez(tmp_path / "sample.npz", features=rows)
    expected = subprocess.run(
        [sys.executable, "-c", "import sys, numpy as np, tensorflow as tf; "
         "f = tf.saved_model.load(sys.argv[1]).signatures['serving_default']; "
         "x = np.load(sys.argv[2])['features']; "
         "np.savez(sys.argv[3], logits=f(features=tf.constant(x))['logits'].numpy())",
         str(tf_models / "logits"), str(tmp_path / "sample.npz"), str(tmp_path / "exp.npz")],
        capture_output=True, text=True, timeout=300)
    assert expected.returncode == 0, expected.stderr[-2000:]
    out = tmp_path / "adopted"
    assert main(["adopt", str(converted), "--sample", str(tmp_path / "sample.npz"),
                 "--expected", str(tmp_path / "exp.npz"), "--output-dir", str(out)]) == 0
    record = load_metadata(str(out / "model.onnx"))
    assert record.origin["onnx_producer"]["name"] == "tf2onnx"
    assert record.inputs == [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}]
    assert record.parity["passed"] and record.parity["max_abs_diff"] < 1e-5


def test_a_savedmodel_as_a_model_artifact_from_your_own_component(tf_models, files, tmp_path):
    """The Model artifact contract with framework tensorflow: export_onnx's step takes a
    SavedModel folder and the artifact's metadata (run in its own process: TensorFlow)."""
    script = (
        "import json, sys\n"
        "from kfp_interop.steps import export_onnx_step\n"
        "meta = export_onnx_step(model_dir=sys.argv[1], test_path=sys.argv[2], out_dir=sys.argv[3],"
        " artifact_metadata={'framework': 'tensorflow', 'task': 'classification',"
        " 'feature_names': ['sepal length (cm)', 'sepal width (cm)', 'petal length (cm)',"
        " 'petal width (cm)'], 'class_labels': ['setosa', 'versicolor', 'virginica']})\n"
        "print(json.dumps(meta.to_dict()))\n")
    done = subprocess.run([sys.executable, "-c", script, str(tf_models / "keras_export"),
                           str(files / "iris.csv"), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    meta = json.loads(done.stdout.strip().splitlines()[-1])
    assert meta["parity"]["passed"] and meta["parity"]["n_rows"] == 150
    assert meta["estimator"] == "tf.SavedModel(serving_default: keras_tensor -> output_0)"
    assert meta["origin"] == {"kind": "exported", "source": "a model artifact"}


def test_loading_a_scikit_learn_file_does_not_import_torch():
    """skops lists scikit-learn's estimators by walking its packages, which would import
    torch through sklearn's array-API shim: kept out, and importable again after."""
    import subprocess
    import sys

    code = ("import sys; from kfp_interop.frameworks.sklearn import _skops_io; "
            "io = _skops_io(); assert io.dumps and 'torch' not in sys.modules; "
            "import sklearn.externals.array_api_compat.torch; assert 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
