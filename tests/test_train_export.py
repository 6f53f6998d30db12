"""Training, native formats, the exporter registry and the parity gate."""

import numpy as np
import onnx
import pandas as pd
import pytest

from kfp_interop.data import load_dataset, split_dataset
from kfp_interop.errors import (ExportError, InvalidInputError, ModelFileError, ParityError,
                                UnknownNameError, UnsupportedModelError)
from kfp_interop.export import EXPORTERS, export_onnx, register_exporter, tensor_specs
from kfp_interop.frameworks import NativeModel, load_native, save_native
from kfp_interop.export import check_parity, enforce_parity
from kfp_interop.onnx_model import ort_session
from kfp_interop.training import parse_hyperparameters, train_model


@pytest.fixture(scope="module")
def splits():
    return {name: split_dataset(load_dataset(name), seed=0)
            for name in ("iris", "breast_cancer", "diabetes")}


CASES = [(ds, fw, est) for ds in ("iris", "breast_cancer", "diabetes")
         for fw, est in (("sklearn", "random_forest"), ("sklearn", "gradient_boosting"),
                         ("xgboost", ""), ("lightgbm", ""))]
CASES += [("iris", "sklearn", "logistic_regression"), ("diabetes", "sklearn",
                                                       "linear_regression")]


@pytest.mark.parametrize("dataset,framework,estimator", CASES)
def test_train_save_load_export_parity(dataset, framework, estimator, splits, tmp_path):
    train, test = splits[dataset]
    result = train_model(train, test, framework=framework, estimator=estimator, seed=3,
                         hyperparameters={"n_estimators": 20} if "linear" not in estimator
                         and "logistic" not in estimator else None)
    if train.task == "classification":
        assert result.metrics["accuracy"] > 0.8 and "roc_auc" in result.metrics
        assert np.asarray(result.confusion_matrix).sum() == test.n_rows
    else:
        assert set(result.metrics) == {"r2", "rmse", "mae"} and result.metrics["r2"] > 0.0
    saved = save_native(NativeModel(result.model, framework, train.task), str(tmp_path))
    native = load_native(str(tmp_path), framework=framework, task=train.task,
                         expected_sha256=saved["sha256"])
    model = export_onnx(native, n_features=train.X.shape[1], opset=17)
    onnx.checker.check_model(model, full_check=True)
    inputs, outputs = tensor_specs(model)
    assert inputs == [{"name": "input", "datatype": "FP32", "shape": [-1, train.X.shape[1]]}]
    if train.task == "classification":
        k = len(train.class_labels)
        assert outputs == [{"name": "label", "datatype": "INT64", "shape": [-1]},
                           {"name": "probabilities", "datatype": "FP32", "shape": [-1, k]}]
    else:
        assert outputs == [{"name": "variable", "datatype": "FP32", "shape": [-1, 1]}]
    assert not any(n.op_type == "ZipMap" for n in model.graph.node)
    result = enforce_parity(check_parity(native, model, test.X))
    assert result.passed and result.n_rows == test.n_rows
    # dynamic batch: 1 row and 257 rows both run
    sess = ort_session(model)
    for n in (1, 257):
        X = np.resize(test.X, (n, test.X.shape[1])).astype(np.float32)
        assert sess.run(None, {"input": X})[0].shape[0] == n


def test_lightgbm_parity_is_exact_where_plain_conversion_is_not(splits):
    """LightGBM's double thresholds: the rewrite makes FP32 decisions identical."""
    train, test = splits["breast_cancer"]
    result = train_model(train, test, framework="lightgbm")
    parity = check_parity(NativeModel(result.model, "lightgbm", "classification"),
                          export_onnx(NativeModel(result.model, "lightgbm", "classification"),
                                      n_features=30), test.X, tolerance=1e-6)
    assert parity.passed, parity


def test_imputer_goes_into_the_onnx_graph(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    X[rng.random(X.shape) < 0.1] = np.nan
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["y"] = y
    df.to_csv(tmp_path / "d.csv", index=False)
    train, test = split_dataset(load_dataset(str(tmp_path / "d.csv"), target_column="y",
                                             nan_policy="impute"))
    for fw in ("sklearn", "xgboost", "lightgbm"):
        result = train_model(train, test, framework=fw, estimator="")
        native = NativeModel(result.model, fw, "classification")
        model = export_onnx(native, n_features=3)
        if fw == "sklearn":
            assert any(n.op_type == "Imputer" for n in model.graph.node)
        assert np.isnan(test.X).any()
        assert enforce_parity(check_parity(native, model, test.X)).passed


def test_parity_gate_fails_on_a_model_that_predicts_differently(splits):
    train, test = splits["iris"]
    result = train_model(train, test, framework="sklearn", estimator="logistic_regression")
    native = NativeModel(result.model, "sklearn", "classification")
    model = export_onnx(native, n_features=4)
    # perturb the coefficients inside the ONNX graph
    for init in model.graph.initializer:
        arr = onnx.numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.size > 4:
            init.CopyFrom(onnx.numpy_helper.from_array(arr * 1.5, init.name))
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.name == "coefficients":
                attr.floats[:] = [v * 1.5 for v in attr.floats]
    parity = check_parity(native, model, test.X)
    assert not parity.passed and parity.max_abs_diff > 1e-3
    with pytest.raises(ParityError, match="exceeds tolerance") as info:
        enforce_parity(parity)
    assert info.value.result["max_abs_diff"] == parity.max_abs_diff


def test_regression_parity_is_relative(splits):
    train, test = splits["diabetes"]
    result = train_model(train, test, framework="xgboost")
    native = NativeModel(result.model, "xgboost", "regression")
    parity = check_parity(native, export_onnx(native, n_features=10), test.X)
    assert parity.label_agreement is None
    assert parity.max_rel_diff <= parity.max_abs_diff
    assert parity.passed


def test_unconvertible_estimator_names_it_and_lists_supported(splits):
    train, test = splits["iris"]
    result = train_model(train, test, framework="sklearn",
                         estimator="sklearn.semi_supervised:LabelPropagation")
    with pytest.raises(UnsupportedModelError, match="LabelPropagation.*RandomForestClassifier"):
        export_onnx(NativeModel(result.model, "sklearn", "classification"), n_features=4)


def test_unknown_framework_and_estimator_list_known_ones(splits):
    train, test = splits["iris"]
    with pytest.raises(UnknownNameError, match="known: lightgbm, sklearn, xgboost"):
        train_model(train, test, framework="catboost")
    with pytest.raises(UnknownNameError, match="random_forest"):
        train_model(train, test, framework="sklearn", estimator="forest")
    with pytest.raises(UnknownNameError, match="register_exporter"):
        export_onnx(NativeModel(None, "catboost", "classification"), n_features=4)


def test_estimator_task_mismatch_and_missing_probabilities(splits):
    train, test = splits["iris"]
    with pytest.raises(InvalidInputError, match="does not do classification"):
        train_model(train, test, estimator="linear_regression")
    with pytest.raises(InvalidInputError, match="predict_proba"):
        train_model(train, test, estimator="sklearn.svm:LinearSVC")
    with pytest.raises(InvalidInputError, match="Cannot import"):
        train_model(train, test, estimator="sklearn.nope:Model")


def test_hyperparameters_are_checked():
    assert parse_hyperparameters('{"max_depth": 3}') == {"max_depth": 3}
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        parse_hyperparameters("{max_depth: 3}")
    with pytest.raises(InvalidInputError, match="JSON object"):
        parse_hyperparameters("[1, 2]")
    train, test = split_dataset(load_dataset("iris"))
    with pytest.raises(InvalidInputError, match=r"Unknown hyperparameter\(s\) \['depth'\]"):
        train_model(train, test, hyperparameters='{"depth": 3}')
    with pytest.raises(InvalidInputError, match="scaler"):
        train_model(train, test, framework="xgboost", scaler=True)


def test_training_is_reproducible_with_a_seed(splits):
    train, test = splits["iris"]
    a = train_model(train, test, estimator="random_forest", seed=5)
    b = train_model(train, test, estimator="random_forest", seed=5)
    np.testing.assert_array_equal(a.model.predict_proba(test.X), b.model.predict_proba(test.X))


def test_scaler_pipeline_exports(splits):
    train, test = splits["iris"]
    result = train_model(train, test, estimator="logistic_regression", scaler=True)
    native = NativeModel(result.model, "sklearn", "classification")
    model = export_onnx(native, n_features=4)
    assert any(n.op_type == "Scaler" for n in model.graph.node)
    assert check_parity(native, model, test.X).passed


def test_opset_out_of_range_and_registry(splits):
    train, test = splits["iris"]
    native = NativeModel(train_model(train, test).model, "sklearn", "classification")
    with pytest.raises(InvalidInputError, match="opset=99"):
        export_onnx(native, n_features=4, opset=99)
    with pytest.raises(ValueError, match="already registered"):
        register_exporter("sklearn", lambda *a: None)
    assert {"sklearn", "xgboost", "lightgbm"} <= set(EXPORTERS.names())


def test_native_model_checksum_and_untrusted_types(tmp_path, splits):
    train, test = splits["iris"]
    native = NativeModel(train_model(train, test).model, "sklearn", "classification")
    save_native(native, str(tmp_path))
    with pytest.raises(ModelFileError, match="does not match its recorded sha256"):
        load_native(str(tmp_path), framework="sklearn", task="classification",
                    expected_sha256="0" * 64)
    # a skops file holding a callable from outside scikit-learn/NumPy is not loaded
    import os

    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    skops.io.dump(FunctionTransformer(func=os.getcwd), str(tmp_path / "model.skops"))
    with pytest.raises(ModelFileError, match=r"does not trust: \['posix.getcwd'\].*"
                                             "KFP_INTEROP_TRUSTED_TYPES"):
        load_native(str(tmp_path), framework="sklearn", task="classification")


def test_broken_exporter_output_is_an_export_error(splits):
    train, test = splits["iris"]
    native = NativeModel(train_model(train, test).model, "fake", "classification")
    register_exporter("fake", lambda m, n, o: onnx.ModelProto(), replace=True)
    with pytest.raises(ExportError, match="expected 2 output"):
        export_onnx(native, n_features=4)


def test_export_is_reproducible_byte_for_byte(splits):
    from kfp_interop.metadata import onnx_content_sha256

    train, test = splits["iris"]
    native = NativeModel(train_model(train, test, seed=1).model, "sklearn", "classification")
    a = export_onnx(native, n_features=4)
    b = export_onnx(native, n_features=4)
    assert a.SerializeToString() == b.SerializeToString()
    assert onnx_content_sha256(a) == onnx_content_sha256(b)
