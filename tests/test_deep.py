"""PyTorch and Keras: deterministic training, safe checkpoints, export with a dynamic
batch, parity, serving batch 1 and 257, and each bad input."""

import os
import warnings

import numpy as np
import pytest

from kfp_interop.data import load_dataset, split_dataset
from kfp_interop.errors import (DatasetError, ExportError, InvalidInputError,
                                ModelFileError, UnsupportedModelError)
from kfp_interop.export import export_onnx, tensor_specs
from kfp_interop.frameworks import NativeModel, load_native, save_native
from kfp_interop.export import check_parity, enforce_parity
from kfp_interop.onnx_model import ort_session

os.environ.setdefault("KERAS_BACKEND", "torch")
warnings.filterwarnings("ignore")


@pytest.fixture(scope="module")
def digits():
    return split_dataset(load_dataset("digits"), seed=0)


@pytest.mark.parametrize("architecture", ["mlp", "cnn", "deep_models:TinyNet"])
def test_torch_train_save_export_parity(architecture, digits, tmp_path):
    from kfp_interop.frameworks.torch import TorchSpec, build_torch_model, train_torch

    train, test = digits
    spec = TorchSpec(architecture, 64, 10)
    model = build_torch_model(spec)
    history = train_torch(model, train.X, train.y, epochs=3, seed=3, X_val=test.X, y_val=test.y)
    assert [h["epoch"] for h in history] == [1, 2, 3] and history[-1]["val_accuracy"] > 0.5
    save_native(NativeModel(model, "torch", "classification", spec), str(tmp_path))
    native = load_native(str(tmp_path), framework="torch", task="classification")
    onnx_model = export_onnx(native, n_features=64, opset=17)
    assert tensor_specs(onnx_model)[0] == [{"name": "input", "datatype": "FP32",
                                            "shape": [-1, 64]}]
    assert enforce_parity(check_parity(native, onnx_model, test.X)).max_abs_diff < 1e-5
    sess = ort_session(onnx_model)
    for n in (1, 257):
        label, proba = sess.run(None, {"input": np.resize(test.X, (n, 64)).astype(np.float32)})
        assert label.shape == (n,) and proba.shape == (n, 10)


def test_torch_training_is_deterministic(digits):
    from kfp_interop.frameworks.torch import TorchSpec, build_torch_model, train_torch, torch_predict_proba

    train, test = digits
    runs = []
    for _ in range(2):
        import torch

        torch.manual_seed(7)
        model = build_torch_model(TorchSpec("cnn", 64, 10))
        train_torch(model, train.X[:300], train.y[:300], epochs=2, seed=7)
        runs.append(torch_predict_proba(model, test.X[:50]))
    np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize("architecture", ["mlp", "cnn"])
def test_keras_on_torch_backend_export_parity(architecture, digits, tmp_path):
    from kfp_interop.frameworks.keras import build_keras_model, train_keras

    train, test = digits
    model = build_keras_model(architecture, 64, 10)
    history = train_keras(model, train.X, train.y, epochs=2)
    assert len(history) == 2
    save_native(NativeModel(model, "keras", "classification"), str(tmp_path))
    native = load_native(str(tmp_path), framework="keras", task="classification")
    onnx_model = export_onnx(native, n_features=64)
    assert [o["name"] for o in tensor_specs(onnx_model)[1]] == ["label", "probabilities"]
    assert enforce_parity(check_parity(native, onnx_model, test.X)).max_abs_diff < 1e-5
    sess = ort_session(onnx_model)
    assert sess.run(None, {"input": np.zeros((257, 64), np.float32)})[0].shape == (257,)


@pytest.mark.parametrize("architecture,args,message", [
    ("nope_module:Net", {}, "module 'nope_module' is not allowed.*KFP_INTEROP_ALLOWED_MODULES"),
    ("os:system", {}, "module 'os' is not allowed"),
    ("deep_models:Missing", {}, "Cannot import model class 'deep_models:Missing'"),
    ("deep_models:NotAModule", {}, "is not a torch.nn.Module"),
    ("deep_models:TinyNet", {"depth": 3}, r"do not fit TinyNet.*depth"),
    ("transformer", {}, "Unknown architecture 'transformer'"),
])
def test_bad_architectures(architecture, args, message):
    from kfp_interop.frameworks.torch import TorchSpec, build_torch_model

    with pytest.raises(InvalidInputError, match=message):
        build_torch_model(TorchSpec(architecture, 64, 10, args))


def test_cnn_needs_square_images():
    from kfp_interop.frameworks.torch import TorchSpec, build_torch_model

    with pytest.raises(InvalidInputError, match="not a square"):
        build_torch_model(TorchSpec("cnn", 30, 2))


def test_operator_without_onnx_translation_is_named(digits):
    from kfp_interop.frameworks.torch import TorchSpec, build_torch_model

    spec = TorchSpec("deep_models:BesselNet", 64, 10)
    native = NativeModel(build_torch_model(spec), "torch", "classification", spec)
    with pytest.raises(UnsupportedModelError, match=r"bessel_j0.*opset 17|opset 17.*bessel"):
        export_onnx(native, n_features=64, opset=17)


def test_checkpoint_of_another_architecture_is_refused(digits, tmp_path):
    import json

    from kfp_interop.frameworks.torch import TorchSpec, build_torch_model

    spec = TorchSpec("mlp", 64, 10)
    save_native(NativeModel(build_torch_model(spec), "torch", "classification", spec),
                str(tmp_path))
    spec_file = tmp_path / "architecture.json"
    spec_file.write_text(json.dumps({**json.loads(spec_file.read_text()),
                                     "architecture": "cnn"}))
    with pytest.raises(ModelFileError, match="does not match architecture 'cnn'"):
        load_native(str(tmp_path), framework="torch", task="classification")


def test_keras_backend_not_installed_or_another_running():
    from kfp_interop.frameworks.keras import keras_backend

    with pytest.raises(InvalidInputError, match="'jax' is not installed"):
        keras_backend("jax")
    keras_backend("torch")
    with pytest.raises(InvalidInputError, match="already running on 'torch'.*new process"):
        keras_backend("tensorflow")
    with pytest.raises(InvalidInputError, match="Unknown Keras backend"):
        keras_backend("theano")


def test_transfer_data_and_k_larger_than_available(tmp_path):
    from kfp_interop.data import load_split
    from kfp_interop.steps import prepare_transfer_data_step

    paths = {p: str(tmp_path / p) for p in ("source_train", "source_test", "target_train",
                                              "target_test")}
    classes = {"source_classes": "0,1,2,3,4", "target_classes": "5,6,7,8,9",
               "target_shift": "none"}
    out = prepare_transfer_data_step(k=4, **classes, **paths)
    tt = load_split(paths["target_train"])
    assert np.bincount(tt.y).tolist() == [4] * 5 and tt.class_labels == ["5", "6", "7", "8", "9"]
    assert load_split(paths["source_train"]).class_labels == ["0", "1", "2", "3", "4"]
    assert out["target"]["k"] == 4
    with pytest.raises(DatasetError, match="k=1000 is larger than the target training samples"):
        prepare_transfer_data_step(k=1000, **classes, **paths)
    with pytest.raises(InvalidInputError, match="overlap"):
        prepare_transfer_data_step(source_classes="0,1,5", target_classes="5,6,7",
                                   **paths)
    with pytest.raises(InvalidInputError, match="comma-separated integers"):
        prepare_transfer_data_step(source_classes="zero,one", **paths)
    with pytest.raises(InvalidInputError, match="Unknown target_shift 'rotate'"):
        prepare_transfer_data_step(target_shift="rotate", **paths)
    with pytest.raises(InvalidInputError, match="shift_strength=2"):
        prepare_transfer_data_step(shift_strength=2, **paths)


def test_the_default_target_is_the_other_half_under_a_shift(tmp_path):
    """Same classes: the source is one stratified half, the target the other half with
    pixel noise (shapes and labels kept); k per class for training, the rest for test."""
    from kfp_interop.data import load_split
    from kfp_interop.steps import prepare_transfer_data_step

    paths = {p: str(tmp_path / p) for p in ("source_train", "source_test", "target_train",
                                              "target_test")}
    out = prepare_transfer_data_step(k=3, **paths)
    src, tt, te = (load_split(paths[p]) for p in ("source_train", "target_train",
                                                  "target_test"))
    assert src.class_labels == tt.class_labels == [str(i) for i in range(10)]
    assert np.bincount(tt.y).tolist() == [3] * 10
    assert out["target"]["shift"] == {"kind": "noise", "strength": 0.3}
    # noisy: values off the digits' integer grid, within the value range
    assert np.mean(te.X != np.round(te.X)) > 0.5 and te.X.min() >= 0 and te.X.max() <= 16
    assert np.all(src.X == np.round(src.X))  # the source is clean
    for kind in ("blur", "contrast", "none"):
        prepare_transfer_data_step(k=3, target_shift=kind, **paths)


def test_finetune_freezes_the_backbone_and_records_lineage(tmp_path):
    import torch

    from kfp_interop.steps import (compare_transfer_step, finetune_step,
                                   prepare_transfer_data_step, train_deep_step)

    def load_torch(folder):
        native = load_native(folder, framework="torch", task="classification")
        return native.model, native.spec

    p = {x: str(tmp_path / x) for x in ("source_train", "source_test", "target_train",
                                          "target_test")}
    prepare_transfer_data_step(k=5, source_classes="0,1,2,3,4", target_classes="5,6,7,8,9",
                               target_shift="none", **p)
    base, _ = train_deep_step(train_path=p["source_train"], test_path=p["source_test"],
                              architecture="mlp", epochs=3, model_dir=str(tmp_path / "base"))
    base_model, _ = load_torch(str(tmp_path / "base"))
    meta, _ = finetune_step(base_model_dir=str(tmp_path / "base"), train_path=p["target_train"],
                            test_path=p["target_test"], epochs=3, lr=0.01,
                            model_dir=str(tmp_path / "ft"))
    tuned, spec = load_torch(str(tmp_path / "ft"))
    assert spec.n_classes == 5
    for (name, a), (_, b) in zip(base_model.backbone.state_dict().items(),
                                 tuned.backbone.state_dict().items()):
        assert torch.equal(a, b), f"frozen backbone parameter {name} changed"
    assert meta.lineage["base_model_sha256"] == base.native_sha256
    assert meta.lineage["source_task"]["classes"] == ["0", "1", "2", "3", "4"]
    scratch, _ = train_deep_step(train_path=p["target_train"], test_path=p["target_test"],
                                 architecture="mlp", epochs=3, model_dir=str(tmp_path / "sc"))
    cmp = compare_transfer_step(finetuned_dir=str(tmp_path / "ft"),
                                scratch_dir=str(tmp_path / "sc"))
    assert cmp["transfer_gain"] == pytest.approx(cmp["target_accuracy"] - cmp["scratch_accuracy"])


def test_a_backbone_you_bring_is_fine_tuned_and_named_by_sha256(tmp_path):
    """A state dict saved by plain PyTorch with its module:Class becomes the base model;
    the fine-tuned model's lineage names it by sha256; .pt2 and classes without
    backbone/head are refused by name."""
    import torch

    from deep_models import TinyNet
    from kfp_interop.errors import UnsupportedModelError
    from kfp_interop.files import sha256_file
    from kfp_interop.steps import finetune_step, import_backbone_step, prepare_transfer_data_step

    p = {x: str(tmp_path / x) for x in ("source_train", "source_test", "target_train",
                                          "target_test")}
    prepare_transfer_data_step(k=5, **p)
    torch.manual_seed(0)
    torch.save(TinyNet(64, 7, width=16).state_dict(), tmp_path / "mine.pt")
    base = import_backbone_step(model_path=str(tmp_path / "mine.pt"),
                                train_path=p["target_train"],
                                architecture="deep_models:TinyNet", init_args='{"width": 16}',
                                model_dir=str(tmp_path / "base"))
    assert base.native_sha256 == sha256_file(str(tmp_path / "base" / "model.pt"))
    meta, _ = finetune_step(base_model_dir=str(tmp_path / "base"),
                            train_path=p["target_train"], test_path=p["target_test"],
                            epochs=2, model_dir=str(tmp_path / "ft"))
    assert meta.lineage["base_model_sha256"] == base.native_sha256
    assert meta.lineage["source_task"] == {"dataset": "mine.pt"}
    assert meta.hyperparameters["head"] == "new"  # its head's classes are unknown
    (tmp_path / "prog.pt2").write_bytes(b"")
    with pytest.raises(UnsupportedModelError, match="prog.pt2.*state dict with its module.*Keras"):
        import_backbone_step(model_path=str(tmp_path / "prog.pt2"), train_path=p["target_train"],
                             model_dir=str(tmp_path / "x"))
    from deep_models import Plain

    torch.save(Plain(64, 10).state_dict(), tmp_path / "plain.pt")
    with pytest.raises(InvalidInputError, match="no 'backbone' and 'head'"):
        import_backbone_step(model_path=str(tmp_path / "plain.pt"), train_path=p["target_train"],
                             architecture="deep_models:Plain", model_dir=str(tmp_path / "y"))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_keras_model_you_bring_gets_a_new_head_and_exports(tmp_path):
    """A .keras file (here without its extension, as an importer's copy may be) is the
    base: a new Dense head on its frozen layers, then all layers; the result is a Keras
    model that passes the parity gate, its lineage the file's sha256. A model not ending
    in Dense, or taking other features, or given an architecture, is refused."""
    from kfp_interop.files import sha256_file
    from kfp_interop.frameworks.keras import keras_backend
    from kfp_interop.steps import (export_onnx_step, finetune_step, import_backbone_step,
                                   prepare_transfer_data_step)

    keras = keras_backend("torch")
    p = {x: str(tmp_path / x) for x in ("source_train", "source_test", "target_train",
                                          "target_test")}
    prepare_transfer_data_step(k=5, source_classes="0,1,2,3,4", target_classes="5,6,7,8,9",
                               target_shift="none", **p)
    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((64,)), keras.layers.Dense(24, activation="relu"),
                             keras.layers.Dense(5, activation="softmax")])
    base.save(tmp_path / "mine.keras")
    os.rename(tmp_path / "mine.keras", tmp_path / "mine")  # no extension
    meta = import_backbone_step(model_path=str(tmp_path / "mine"), train_path=p["target_train"],
                                model_dir=str(tmp_path / "base"))
    assert meta.framework == "keras" and meta.native_sha256 == sha256_file(
        str(tmp_path / "mine"))
    frozen_kernel = np.array(base.layers[0].kernel)
    tuned, _ = finetune_step(base_model_dir=str(tmp_path / "base"),
                             train_path=p["target_train"], test_path=p["target_test"],
                             epochs=3, unfreeze_epochs=0, model_dir=str(tmp_path / "ft"))
    assert tuned.framework == "keras" and tuned.hyperparameters["head"] == "new"
    assert tuned.lineage["base_model_sha256"] == meta.native_sha256
    assert tuned.lineage["base_framework"] == "keras"
    assert tuned.class_labels == ["5", "6", "7", "8", "9"]
    reloaded = load_native(str(tmp_path / "ft"), framework="keras", task="classification")
    # frozen: the backbone's first layer is the file's, the head is new (5 target classes)
    assert np.allclose(np.array(reloaded.model.layers[1].kernel), frozen_kernel)
    assert reloaded.model.outputs[0].shape[-1] == 5
    out = export_onnx_step(model_dir=str(tmp_path / "ft"), test_path=p["target_test"],
                      out_dir=str(tmp_path / "onnx"))
    assert out.parity_passed and (tmp_path / "onnx" / "model.onnx").exists()

    plain = keras.Sequential([keras.Input((64,)), keras.layers.Dense(5),
                              keras.layers.Softmax()])
    plain.save(tmp_path / "softmax-last.keras")
    import_backbone_step(model_path=str(tmp_path / "softmax-last.keras"),
                         train_path=p["target_train"], model_dir=str(tmp_path / "sl"))
    with pytest.raises(InvalidInputError, match="last layer is Softmax.*Dense"):
        finetune_step(base_model_dir=str(tmp_path / "sl"), train_path=p["target_train"],
                      test_path=p["target_test"], epochs=1, model_dir=str(tmp_path / "sl-ft"))
    wide = keras.Sequential([keras.Input((10,)), keras.layers.Dense(5, activation="softmax")])
    wide.save(tmp_path / "wide.keras")
    with pytest.raises(InvalidInputError, match="takes 10 features; the target data has 64"):
        import_backbone_step(model_path=str(tmp_path / "wide.keras"),
                             train_path=p["target_train"], model_dir=str(tmp_path / "w"))
    with pytest.raises(InvalidInputError, match="drop architecture='mlp'"):
        import_backbone_step(model_path=str(tmp_path / "mine"), train_path=p["target_train"],
                             architecture="mlp", model_dir=str(tmp_path / "a"))
    for d in ("sl-ft", "w", "a"):
        assert not (tmp_path / d).exists()


def test_warm_start_adds_rounds_and_refuses_other_schemas(tmp_path):
    import xgboost

    from kfp_interop.steps import load_data_step, split_rows_step, train_step, warm_start_step

    d = str(tmp_path)
    load_data_step(dataset="breast_cancer", train_path=d + "/tr", test_path=d + "/te")
    split_rows_step(data_path=d + "/tr", first_path=d + "/old", second_path=d + "/new")
    base, _ = train_step(train_path=d + "/old", test_path=d + "/te", framework="xgboost",
                         estimator="", hyperparameters='{"n_estimators": 10}',
                         model_dir=d + "/base")
    meta, _ = warm_start_step(base_model_dir=d + "/base", train_path=d + "/new",
                              test_path=d + "/te", n_estimators=5, model_dir=d + "/warm")
    booster = xgboost.XGBClassifier()
    booster.load_model(d + "/warm/model.json")
    assert booster.get_booster().num_boosted_rounds() == 15
    assert meta.lineage["base_model_sha256"] == base.native_sha256
    train_step(train_path=d + "/old", test_path=d + "/te", model_dir=d + "/rf")
    with pytest.raises(InvalidInputError, match="capability 'warm_start'; 'sklearn' has "
                                                "none. Frameworks that have it: xgboost"):
        warm_start_step(base_model_dir=d + "/rf", train_path=d + "/new", test_path=d + "/te",
                        model_dir=d + "/x")
    load_data_step(dataset="wine", train_path=d + "/wtr", test_path=d + "/wte")
    with pytest.raises(InvalidInputError, match="same schema"):
        warm_start_step(base_model_dir=d + "/base", train_path=d + "/wtr",
                        test_path=d + "/wte", model_dir=d + "/y")


def test_a_framework_registered_with_warm_start_gets_the_warm_start_step(tmp_path):
    """A throwaway framework (scikit-learn's gradient boosting, continued with
    warm_start=True) declares the capability and is reached through the registry: the
    step continues it, its lineage comes from the framework, and it is listed beside
    XGBoost as a framework that can."""
    import copy

    from kfp_interop.frameworks import FRAMEWORKS, register_framework, with_capability
    from kfp_interop.frameworks.sklearn import SklearnFramework
    from kfp_interop.steps import load_data_step, split_rows_step, train_step, warm_start_step

    class HistBoost(SklearnFramework):
        name = "hist-boost"
        distributions = ("scikit-learn",)

        def warm_start(self, base, X, y, *, task, n_estimators):
            model = copy.deepcopy(base)
            model.set_params(warm_start=True, n_estimators=base.n_estimators + n_estimators)
            return model.fit(X, y)

        def base_summary(self, model):
            return {"stages": int(model.n_estimators_)}

    register_framework(HistBoost())
    try:
        assert sorted(with_capability("warm_start")) == ["hist-boost", "xgboost"]
        d = str(tmp_path)
        load_data_step(dataset="breast_cancer", train_path=d + "/tr", test_path=d + "/te")
        split_rows_step(data_path=d + "/tr", first_path=d + "/old", second_path=d + "/new")
        train_step(train_path=d + "/old", test_path=d + "/te", framework="hist-boost",
                   estimator="gradient_boosting",
                   hyperparameters='{"n_estimators": 10}',
                   model_dir=d + "/base")
        meta, _ = warm_start_step(base_model_dir=d + "/base", train_path=d + "/new",
                                  test_path=d + "/te", n_estimators=5, model_dir=d + "/warm")
        assert meta.framework == "hist-boost"
        assert meta.lineage["base_framework"] == "hist-boost"
        assert meta.lineage["source_task"]["stages"] == 10
        assert meta.metrics["accuracy"] > 0.85
        from kfp_interop.frameworks import load_native

        warm = load_native(d + "/warm", framework="hist-boost", task="classification")
        assert warm.model.n_estimators_ == 15
    finally:
        FRAMEWORKS.unregister("hist-boost")


def test_fine_tuning_a_framework_without_the_capability_names_those_with_it(tmp_path):
    from kfp_interop.frameworks import with_capability
    from kfp_interop.steps import finetune_step, load_data_step, train_step

    assert sorted(with_capability("finetune")) == ["keras", "torch"]
    d = str(tmp_path)
    load_data_step(dataset="digits", train_path=d + "/tr", test_path=d + "/te")
    train_step(train_path=d + "/tr", test_path=d + "/te", model_dir=d + "/rf")
    with pytest.raises(InvalidInputError, match="capability 'finetune'; 'sklearn' has none. "
                                                "Frameworks that have it: keras, torch"):
        finetune_step(base_model_dir=d + "/rf", train_path=d + "/tr", test_path=d + "/te",
                      model_dir=d + "/ft")
    assert not (tmp_path / "ft").exists()
