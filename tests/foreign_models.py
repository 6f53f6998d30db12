"""The ways users commonly save a model, one case each: how the file is made (the
framework's own API, nothing of ours), what the user passes to `kfp-interop export`,
and what must happen: exported with parity, or refused by name with what to do.

tests/test_foreign_matrix.py runs every case; the table of what enters and what is
refused in docs/model-artifact.md is generated from these cases
(`python tests/foreign_models.py --write-docs`), and a test fails when it drifts.

Each maker writes its files into a folder and returns (model file, sample file,
expected outputs computed by the framework itself on the sample's rows, in the
interface's terms: probabilities for classifiers, values for regressors).
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from typing import Callable

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DOC = os.path.join(ROOT, "docs", "model-artifact.md")
BEGIN, END = "<!-- foreign-matrix:begin -->", "<!-- foreign-matrix:end -->"


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    framework: str
    made: str                   # how the user made the file (for the docs)
    make: Callable | None       # (folder) -> (model, sample, expected); None: made by TF_SCRIPT
    outcome: str = "exported"   # or the name of the error type it is refused with
    match: str = ""             # what the refusal must say (regex)
    note: str = ""              # what the docs say happens
    args: tuple = ()            # extra `kfp-interop export` arguments
    inputs: tuple = ()          # the record's inputs as (name, datatype), when checked
    feature_names: tuple = ()   # the record's feature names, when checked


def _iris(as_frame=True):
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=as_frame)
    return X, y


def _diabetes():
    from sklearn.datasets import load_diabetes

    return load_diabetes(return_X_y=True, as_frame=True)


def _write(d, name, frame, target):
    out = frame.copy()
    out["target"] = target
    path = os.path.join(d, name)
    out.to_csv(path, index=False)
    return path


def _short_iris():
    """Iris with the column names users give it (no units)."""
    X, y = _iris()
    X.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    return X, y


# ---------------------------------------------------------------- scikit-learn

def sk_numpy_classifier(d):
    import skops.io
    from sklearn.linear_model import LogisticRegression

    X, y = _iris()
    model = LogisticRegression(max_iter=500).fit(X.to_numpy(), y)
    skops.io.dump(model, os.path.join(d, "m.skops"))
    return "m.skops", _write(d, "s.csv", X, y), model.predict_proba(X.to_numpy())


def sk_frame_regressor(d):
    import skops.io
    from sklearn.ensemble import RandomForestRegressor

    X, y = _diabetes()
    model = RandomForestRegressor(n_estimators=10, random_state=0).fit(X, y)
    skops.io.dump(model, os.path.join(d, "m.skops"))
    return "m.skops", _write(d, "s.csv", X[X.columns[::-1]], y), model.predict(X)


def sk_pipeline_names(d):
    import skops.io
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _short_iris()
    model = Pipeline([("columns", ColumnTransformer(
        [("scale", StandardScaler(), ["sepal_length", "sepal_width"])],
        remainder="passthrough")), ("model", LogisticRegression(max_iter=500))]).fit(X, y)
    skops.io.dump(model, os.path.join(d, "m.skops"))
    return "m.skops", _write(d, "s.csv", X, y), model.predict_proba(X)


def sk_pipeline_text(d):
    import skops.io
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = _short_iris()
    X["color"] = np.random.default_rng(0).choice(["red", "green", "blue"], len(X))
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    model = Pipeline([("columns", ColumnTransformer([
        ("text", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["color"]),
        ("numbers", StandardScaler(), list(X.columns[:4]))])),
        ("model", GradientBoostingClassifier(n_estimators=10, random_state=0))]).fit(X, labels)
    skops.io.dump(model, os.path.join(d, "m.skops"))
    return "m.skops", _write(d, "s.csv", X, labels), model.predict_proba(X)


def sk_pickle(d):
    import pickle

    from sklearn.linear_model import LogisticRegression

    X, y = _iris()
    with open(os.path.join(d, "m.pkl"), "wb") as f:
        pickle.dump(LogisticRegression(max_iter=500).fit(X, y), f)
    return "m.pkl", _write(d, "s.csv", X, y), None


# ---------------------------------------------------------------------- XGBoost

def _xgb_sklearn(cls, X, y, d, name, **kw):
    model = cls(n_estimators=15, max_depth=3, n_jobs=1, **kw).fit(X, y)
    model.save_model(os.path.join(d, name))
    return model


def xgb_frame_multiclass_json(d):
    import xgboost as xgb

    X, y = _short_iris()
    model = _xgb_sklearn(xgb.XGBClassifier, X, y, d, "booster.json")
    return "booster.json", _write(d, "s.csv", X[X.columns[::-1]], y), model.predict_proba(X)


def xgb_frame_regressor_ubj(d):
    import xgboost as xgb

    X, y = _diabetes()
    model = _xgb_sklearn(xgb.XGBRegressor, X, y, d, "booster.ubj")
    return "booster.ubj", _write(d, "s.csv", X, y), model.predict(X)


def xgb_frame_binary_booster_ubj(d):
    import xgboost as xgb

    X, y = _short_iris()
    y = (y == 2).astype(int)
    booster = xgb.train({"objective": "binary:logistic", "nthread": 1, "max_depth": 3},
                        xgb.DMatrix(X, y), 15)
    booster.save_model(os.path.join(d, "booster.ubj"))
    p = booster.predict(xgb.DMatrix(X))
    return "booster.ubj", _write(d, "s.csv", X, y), np.column_stack([1 - p, p])


def xgb_numpy_binary_booster_json(d):
    import xgboost as xgb

    X, y = _iris()
    y = (y == 1).astype(int)
    booster = xgb.train({"objective": "binary:logistic", "nthread": 1},
                        xgb.DMatrix(X.to_numpy(), y), 15)
    booster.save_model(os.path.join(d, "booster.json"))
    p = booster.predict(xgb.DMatrix(X.to_numpy()))
    return "booster.json", _write(d, "s.csv", X, y), np.column_stack([1 - p, p])


def xgb_numpy_regressor_json(d):
    import xgboost as xgb

    X, y = _diabetes()
    model = _xgb_sklearn(xgb.XGBRegressor, X.to_numpy(), y, d, "booster.json")
    return "booster.json", _write(d, "s.csv", X, y), model.predict(X.to_numpy())


def _with_categories(X, seed=0):
    rng = np.random.default_rng(seed)
    X = X.copy()
    X["kind"] = pd.Categorical(rng.choice(["red", "green", "blue", "grey"], len(X)))
    X["store"] = pd.Categorical(rng.choice([3, 7, 11], len(X)))
    return X


def _unseen(X):
    """The sample as a CSV holds it: categories as plain values, some never seen."""
    S = X.copy()
    S["kind"] = S["kind"].astype(str)
    S["store"] = S["store"].astype(int)
    S.loc[S.index[:6], "kind"] = "purple"
    S.loc[S.index[6:12], "store"] = 5
    return S


def _as_categories_of(S, X):
    """The sample's text columns as the categories the model was fitted on (what the
    framework itself takes; our ONNX file takes the text)."""
    return S.astype({c: pd.CategoricalDtype(X[c].cat.categories) for c in ("kind", "store")})


def xgb_frame_categories(d):
    import xgboost as xgb

    X, y = _short_iris()
    X = _with_categories(X)
    y = (y + (X["kind"] == "green").astype(int)) % 3
    model = _xgb_sklearn(xgb.XGBClassifier, X, y, d, "booster.json", enable_categorical=True,
                         tree_method="hist", max_cat_to_onehot=1)
    S = _unseen(X)
    expected = model.predict_proba(_as_categories_of(S, X))
    return "booster.json", _write(d, "s.csv", S, y), expected


def xgb_gblinear(d):
    import xgboost as xgb

    X, y = _diabetes()
    _xgb_sklearn(xgb.XGBRegressor, X, y, d, "booster.json", booster="gblinear")
    return "booster.json", _write(d, "s.csv", X, y), None


# --------------------------------------------------------------------- LightGBM

def lgb_numpy_regressor(d):
    import lightgbm as lgb

    X, y = _diabetes()
    booster = lgb.train({"objective": "regression", "verbosity": -1, "num_threads": 1},
                        lgb.Dataset(X.to_numpy(), y), 20)
    booster.save_model(os.path.join(d, "model.txt"))
    return "model.txt", _write(d, "s.csv", X, y), booster.predict(X.to_numpy())


def lgb_frame_multiclass(d):
    import lightgbm as lgb

    X, y = _iris()  # column names with spaces: LightGBM stores them with underscores
    model = lgb.LGBMClassifier(n_estimators=15, verbosity=-1, n_jobs=1).fit(X, y)
    model.booster_.save_model(os.path.join(d, "model.txt"))
    return "model.txt", _write(d, "s.csv", X, y), model.predict_proba(X)


def lgb_frame_categories(d):
    import lightgbm as lgb

    X, y = _short_iris()
    X = _with_categories(X)
    y = ((y == 2) ^ (X["kind"] == "green")).astype(int)
    model = lgb.LGBMClassifier(n_estimators=20, verbosity=-1, n_jobs=1,
                               min_child_samples=5).fit(X, y)
    model.booster_.save_model(os.path.join(d, "model.txt"))
    S = _unseen(X)
    expected = model.predict_proba(_as_categories_of(S, X))
    return "model.txt", _write(d, "s.csv", S, y), expected


def lgb_linear_tree(d):
    import lightgbm as lgb

    X, y = _diabetes()
    lgb.train({"objective": "regression", "linear_tree": True, "verbosity": -1,
               "num_threads": 1}, lgb.Dataset(X.to_numpy(), y), 5).save_model(
        os.path.join(d, "model.txt"))
    return "model.txt", _write(d, "s.csv", X, y), None


# ---------------------------------------------------------------------- PyTorch

def _torch_net(tuple_out=False):
    import torch

    from deep_models import TinyNet, TwoHeads

    torch.manual_seed(0)
    return (TwoHeads(4, 3) if tuple_out else TinyNet(4, 3, width=8)).eval()


def _torch_expected(net, X):
    import torch

    with torch.no_grad():
        return torch.softmax(net(torch.tensor(X.to_numpy(), dtype=torch.float32)), 1).numpy()


def torch_state_dict(d):
    import torch

    X, y = _iris()
    net = _torch_net()
    torch.save(net.state_dict(), os.path.join(d, "net.pt"))
    return "net.pt", _write(d, "s.csv", X, y), _torch_expected(net, X)


def torch_program(d):
    import torch

    X, y = _iris()
    net = _torch_net()
    program = torch.export.export(net, (torch.zeros(2, 4),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, os.path.join(d, "net.pt2"))
    return "net.pt2", _write(d, "s.csv", X, y), _torch_expected(net, X)


def torch_state_dict_tuple(d):
    import torch

    X, y = _iris()
    torch.save(_torch_net(tuple_out=True).state_dict(), os.path.join(d, "net.pt"))
    return "net.pt", _write(d, "s.csv", X, y), None


def torch_program_tuple(d):
    import torch

    X, y = _iris()
    program = torch.export.export(_torch_net(tuple_out=True), (torch.zeros(2, 4),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, os.path.join(d, "net.pt2"))
    return "net.pt2", _write(d, "s.csv", X, y), None


# ------------------------------------------------------------- Keras 3 (torch)

def _keras():
    from kfp_interop.frameworks.keras import keras_backend

    keras = keras_backend("torch")
    keras.utils.set_random_seed(0)
    return keras


def keras_sequential(d):
    keras = _keras()
    X, y = _iris()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.save(os.path.join(d, "m.keras"))
    return "m.keras", _write(d, "s.csv", X, y), model.predict(X.to_numpy(np.float32), verbose=0)


def keras_functional_named(d):
    keras = _keras()
    X, y = _iris()
    inputs = keras.Input((4,), name="features")
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", name="probabilities")(hidden)
    model = keras.Model(inputs, outputs)
    model.save(os.path.join(d, "m.keras"))
    return "m.keras", _write(d, "s.csv", X, y), model.predict(X.to_numpy(np.float32), verbose=0)


def keras_functional_logits(d):
    keras = _keras()
    X, y = _iris()
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(3, name="label")(keras.layers.Dense(8, activation="relu")(
        inputs))
    model = keras.Model(inputs, outputs)
    model.save(os.path.join(d, "m.keras"))
    logits = model.predict(X.to_numpy(np.float32), verbose=0)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return "m.keras", _write(d, "s.csv", X, y), e / e.sum(axis=1, keepdims=True)


def keras_binary_sigmoid(d):
    keras = _keras()
    X, y = _iris()
    y = (y == 2).astype(int)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.save(os.path.join(d, "m.keras"))
    p = model.predict(X.to_numpy(np.float32), verbose=0).reshape(-1)
    return "m.keras", _write(d, "s.csv", X, y), np.column_stack([1 - p, p])


# ------------------------------------------------ TensorFlow (its own process)

#: run as `python -c TF_SCRIPT FOLDER CASE...`: makes each TensorFlow case's SavedModel
#: in FOLDER/CASE with TensorFlow (this test process runs Keras on torch) and its
#: expected outputs; the export then runs in the same process (TensorFlow loaded once).
TF_SCRIPT = r"""
import json, os, sys
os.environ["KERAS_BACKEND"] = "tensorflow"
import numpy as np, pandas as pd, tensorflow as tf
from sklearn.datasets import load_iris
root, cases = sys.argv[1], sys.argv[2:]
X, y = load_iris(return_X_y=True, as_frame=True)
rows = tf.constant(X.to_numpy(np.float32))

def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)

class Net(tf.Module):
    def __init__(self, kind):
        self.kind = kind
        self.w = tf.Variable(tf.random.stateless_normal([4, 3], seed=[1, 2]))
        self.b = tf.Variable(tf.zeros([3]))
    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def __call__(self, x):
        z = x @ self.w + self.b
        p = tf.nn.softmax(z)
        if self.kind == "tensor":
            return z                                   # a bare tensor of logits
        if self.kind == "probabilities":
            return {"probabilities": p}
        if self.kind == "label":
            return {"label": z}                          # logits, named like our label
        if self.kind == "both":
            return {"probabilities": p, "label": tf.argmax(p, axis=1)}
        return {"scores": p, "classes": tf.argmax(p, axis=1)}   # "two"

results = {}
for case in cases:
    kind = case.split("-", 1)[1]
    net = Net(kind)
    folder = os.path.join(root, case)
    tf.saved_model.save(net, folder, signatures={"serving_default": net.__call__})
    out = net(rows)
    out = out if isinstance(out, tf.Tensor) else out.get("probabilities", out.get("label",
                                                                        out.get("scores")))
    z = out.numpy()
    expected = z if kind in ("probabilities", "both", "two") else softmax(z)
    sample = os.path.join(root, case + ".csv")
    X.assign(target=y).to_csv(sample, index=False)
    results[case] = {"model": folder, "sample": sample, "expected": expected.tolist()}

from kfp_interop.steps import export_file_step
for case, found in results.items():
    try:
        export_file_step(model_path=found["model"], framework="tensorflow",
                         sample_path=found["sample"], target_column="target",
                         out_dir=os.path.join(root, case + "-out"))
        found["error"] = None
    except Exception as e:
        found["error"] = [type(e).__name__, str(e)]
print("RESULTS " + json.dumps(results))
"""


IRIS_NAMES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
IRIS_UNITS = ("sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)")

CASES = (
    Case("sklearn-numpy-classifier", "sklearn", "LogisticRegression fitted on a NumPy "
         "array, `skops.io.dump`", sk_numpy_classifier,
         note="the sample's columns are the features, in order"),
    Case("sklearn-frame-regressor", "sklearn", "RandomForestRegressor fitted on a DataFrame",
         sk_frame_regressor, note="columns matched by name (`feature_names_in_`), any order"),
    Case("sklearn-pipeline-names", "sklearn", "Pipeline: ColumnTransformer selecting numeric "
         "columns by name, LogisticRegression", sk_pipeline_names,
         inputs=(("input", "FP32"),), feature_names=IRIS_NAMES,
         note="one `input` matrix: the names become positions for skl2onnx"),
    Case("sklearn-pipeline-text", "sklearn", "Pipeline: ColumnTransformer with OneHotEncoder "
         "on a text column and a scaler, classifier on string labels", sk_pipeline_text,
         inputs=tuple((n, "FP32") for n in IRIS_NAMES) + (("color", "BYTES"),),
         note="one input per column, text as BYTES"),
    Case("sklearn-pickle", "sklearn", "`pickle.dump` (or joblib) of an estimator", sk_pickle,
         outcome="ModelFileError", match="pickle and joblib files are refused",
         note="loading a pickle runs code: save with `skops.io.dump`"),
    Case("xgboost-frame-multiclass-json", "xgboost", "XGBClassifier fitted on a DataFrame, "
         "`save_model('m.json')`", xgb_frame_multiclass_json, feature_names=IRIS_NAMES,
         note="the booster's feature names are the record's; the sample's columns "
              "matched by name, in the booster's order"),
    Case("xgboost-frame-regressor-ubj", "xgboost", "XGBRegressor fitted on a DataFrame, "
         "`save_model('m.ubj')`", xgb_frame_regressor_ubj,
         feature_names=("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")),
    Case("xgboost-frame-binary-booster-ubj", "xgboost", "`xgb.train` (binary:logistic) on a "
         "DMatrix of a DataFrame, `Booster.save_model('m.ubj')`",
         xgb_frame_binary_booster_ubj, feature_names=IRIS_NAMES),
    Case("xgboost-numpy-binary-booster-json", "xgboost", "`xgb.train` (binary:logistic) on "
         "a NumPy array, `Booster.save_model('m.json')`", xgb_numpy_binary_booster_json),
    Case("xgboost-numpy-regressor-json", "xgboost", "XGBRegressor fitted on a NumPy array",
         xgb_numpy_regressor_json),
    Case("xgboost-frame-categories", "xgboost", "XGBClassifier(enable_categorical=True) on "
         "pandas `category` columns (text and numbers)", xgb_frame_categories,
         inputs=tuple((n, "FP32") for n in IRIS_NAMES) + (("kind", "BYTES"), ("store", "FP32")),
         note="the categories XGBoost stores map values to codes inside the graph; "
              "an unseen value is a missing one"),
    Case("xgboost-gblinear", "xgboost", "XGBRegressor(booster='gblinear')", xgb_gblinear,
         outcome="UnsupportedModelError", match=r"booster='gblinear'.*'gbtree'",
         note="no ONNX converter for linear boosters: train with gbtree"),
    Case("lightgbm-numpy-regressor", "lightgbm", "`lgb.train` on a NumPy array, "
         "`save_model('m.txt')`", lgb_numpy_regressor),
    Case("lightgbm-frame-multiclass", "lightgbm", "LGBMClassifier fitted on a DataFrame whose "
         "column names hold spaces, `booster_.save_model`", lgb_frame_multiclass,
         feature_names=IRIS_UNITS,
         note="LightGBM stores `sepal length (cm)` as `sepal_length_(cm)`: matched"),
    Case("lightgbm-frame-categories", "lightgbm", "LGBMClassifier on pandas `category` "
         "columns (text and numbers)", lgb_frame_categories,
         inputs=tuple((n, "FP32") for n in IRIS_NAMES) + (("kind", "BYTES"), ("store", "FP32")),
         note="`pandas_categorical` maps values to codes inside the graph; an unseen "
              "value is a missing one"),
    Case("lightgbm-linear-tree", "lightgbm", "`lgb.train(linear_tree=True)`", lgb_linear_tree,
         outcome="UnsupportedModelError", match="linear_tree=False",
         note="linear leaves have no ONNX tree-ensemble form"),
    Case("torch-state-dict", "torch", "`torch.save(model.state_dict())`, one output",
         torch_state_dict, args=("--architecture", "deep_models:TinyNet",
                                 "--init-args", '{"width": 8}'),
         note="with `--architecture module:Class` (an allowed module)"),
    Case("torch-program", "torch", "`torch.export.save` with a dynamic batch, one output",
         torch_program),
    Case("torch-state-dict-tuple", "torch", "state dict of a module returning a tuple",
         torch_state_dict_tuple, args=("--architecture", "deep_models:TwoHeads"),
         outcome="UnsupportedModelError", match="returns a tuple of 2.*logits only",
         note="wrap it so forward returns the logits only"),
    Case("torch-program-tuple", "torch", "`torch.export` program returning a tuple",
         torch_program_tuple, outcome="UnsupportedModelError",
         match="returns a tuple of 2.*logits only"),
    Case("keras-sequential", "keras", "Sequential ending in Dense(softmax), "
         "`model.save('m.keras')`", keras_sequential),
    Case("keras-functional-named", "keras", "functional model whose output layer is named "
         "`probabilities`", keras_functional_named,
         note="an output named like ours is not duplicated"),
    Case("keras-functional-logits", "keras", "functional model returning logits from a layer "
         "named `label`", keras_functional_logits,
         note="logits get a softmax on both sides"),
    Case("keras-binary-sigmoid", "keras", "Sequential ending in Dense(1, sigmoid)",
         keras_binary_sigmoid, note="a binary classifier: probabilities `[1 - p, p]`"),
    Case("tensorflow-tensor", "tensorflow", "`tf.Module` SavedModel returning a bare tensor "
         "of logits", None, note="logits get a softmax on both sides"),
    Case("tensorflow-probabilities", "tensorflow", "SavedModel returning "
         "`{'probabilities': tf.nn.softmax(...)}`", None,
         note="an output named like ours is not duplicated"),
    Case("tensorflow-label", "tensorflow", "SavedModel returning `{'label': logits}`", None),
    Case("tensorflow-both", "tensorflow", "SavedModel returning `{'probabilities': p, "
         "'label': argmax}`", None,
         note="`probabilities` is exported; the label is its argmax"),
    Case("tensorflow-two", "tensorflow", "SavedModel returning two outputs, neither named "
         "`probabilities`", None, outcome="UnsupportedModelError",
         match=r"returns \['classes', 'scores'\].*Name the class probabilities",
         note="name the probabilities `probabilities`, or save one output"),
)


def table() -> str:
    """The docs table: one row per case."""
    rows = ["| framework | how the file was made | outcome | |", "|---|---|---|---|"]
    for case in CASES:
        outcome = ("exported, parity" if case.outcome == "exported"
                   else f"refused: `{case.outcome}`")
        rows.append(f"| `{case.framework}` | {case.made} | {outcome} | {case.note} |")
    return "\n".join(rows)


def docs_section(text: str) -> str:
    found = re.search(re.escape(BEGIN) + r"\n(.*?)\n" + re.escape(END), text, re.S)
    return found.group(1) if found else ""


if __name__ == "__main__" and "--write-docs" in sys.argv:
    with open(DOC) as f:
        text = f.read()
    if BEGIN not in text:
        raise SystemExit(f"{DOC} has no {BEGIN} ... {END} section")
    text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END),
                  lambda _m: f"{BEGIN}\n{table()}\n{END}", text, flags=re.S)
    with open(DOC, "w") as f:
        f.write(text)
    print(f"wrote {len(CASES)} cases into {DOC}")
