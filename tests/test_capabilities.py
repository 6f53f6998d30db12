"""Framework capabilities reached through the registry: a framework registered by a user
(here throwaway ones, built on the built-in classes) declares fine-tuning or federated
training by implementing the capability's methods, and the transfer-learning and
federated steps take it without naming it; the warm-start one is in
tests/test_deep.py::test_a_framework_registered_with_warm_start_gets_the_warm_start_step."""

import json

import numpy as np
import pytest

from kfp_interop.errors import InvalidInputError
from kfp_interop.frameworks import FRAMEWORKS, register_framework, with_capability
from kfp_interop.frameworks.sklearn import SklearnFramework
from kfp_interop.frameworks.torch import TorchFramework


@pytest.fixture
def registered():
    names = []

    def add(fw):
        register_framework(fw)
        names.append(fw.name)
        return fw

    yield add
    for name in names:
        FRAMEWORKS.unregister(name)


def test_a_registered_network_framework_is_fine_tuned(registered, tmp_path):
    from kfp_interop.steps import (finetune_step, prepare_transfer_data_step,
                                   train_deep_step)

    class Nets(TorchFramework):
        name = "nets"
        distributions = ("torch",)

        def backbone_file(self, path):  # its own pretrained files: state dicts, .nets
            return path.endswith(".nets")

    registered(Nets())
    assert "nets" in with_capability("finetune")
    p = {x: str(tmp_path / x) for x in ("source_train", "source_test", "target_train",
                                         "target_test")}
    prepare_transfer_data_step(k=5, source_classes="0,1,2,3,4", target_classes="5,6,7,8,9",
                               target_shift="none", **p)
    base, _ = train_deep_step(train_path=p["source_train"], test_path=p["source_test"],
                              framework="nets", architecture="mlp", epochs=2,
                              model_dir=str(tmp_path / "base"))
    meta, _ = finetune_step(base_model_dir=str(tmp_path / "base"),
                            train_path=p["target_train"], test_path=p["target_test"],
                            epochs=2, model_dir=str(tmp_path / "ft"))
    assert meta.framework == "nets" and meta.lineage["base_framework"] == "nets"
    assert meta.hyperparameters["head"] == "new"
    assert meta.class_labels == ["5", "6", "7", "8", "9"]
    # a pretrained file of its kind, brought from elsewhere: import_backbone asks the
    # registry which framework reads it, and fine-tuning follows that framework
    import shutil

    from kfp_interop.steps import import_backbone_step

    shutil.copy(tmp_path / "base" / "model.pt", tmp_path / "pretrained.nets")
    imported = import_backbone_step(model_path=str(tmp_path / "pretrained.nets"),
                                    train_path=p["target_train"], architecture="mlp",
                                    init_args=json.dumps({"n_classes": 5}),
                                    model_dir=str(tmp_path / "imported"))
    assert imported.framework == "nets" and imported.origin["kind"] == "imported"
    tuned, _ = finetune_step(base_model_dir=str(tmp_path / "imported"),
                             train_path=p["target_train"], test_path=p["target_test"],
                             epochs=2, model_dir=str(tmp_path / "ft2"))
    assert tuned.lineage["base_framework"] == "nets"
    assert tuned.lineage["base_model_sha256"] == imported.native_sha256
    # a plain .pt file still goes to the built-in torch framework
    shutil.copy(tmp_path / "base" / "model.pt", tmp_path / "plain.pt")
    assert import_backbone_step(model_path=str(tmp_path / "plain.pt"),
                                train_path=p["target_train"], architecture="mlp",
                                init_args=json.dumps({"n_classes": 5}),
                                model_dir=str(tmp_path / "plain")).framework == "torch"


def test_a_registered_framework_with_a_new_architecture_federates(registered, tmp_path):
    """A logistic regression without intercept ('logistic-nobias'), registered as its own
    framework, goes through the federated steps: init, a client's round, aggregation."""
    from kfp_interop.steps import (federated_aggregate_step, federated_client_step, federated_init_step,
                                   federated_split_step)

    class NoBias(SklearnFramework):
        name = "nobias"
        distributions = ("scikit-learn",)
        federated_architectures = ("logistic-nobias",)

        def federates(self, architecture):
            return architecture == "logistic-nobias"

        def federated_train(self, spec, weights, X, y, **kw):
            new, metrics = super().federated_train(spec, weights, X, y, **kw)
            return [new[0], np.zeros_like(new[1])], metrics  # the intercept stays 0

    registered(NoBias())
    assert "nobias" in with_capability("federated")
    d = tmp_path
    federated_split_step(dataset="iris", clients=2, partition="iid",
                         partitions_dir=str(d / "parts"), train_path=str(d / "train"),
                         test_path=str(d / "test"))
    spec = federated_init_step(train_path=str(d / "train"), architecture="logistic-nobias",
                               out_dir=str(d / "g0"))
    assert spec["kind"] == "nobias"
    for client in (0, 1):
        federated_client_step(partitions_dir=str(d / "parts"), client=client, global_dir=str(d / "g0"),
                    server_round=1, lr=0.01, out_dir=str(d / f"c{client}"))
    result = federated_aggregate_step(global_dir=str(d / "g0"), client_dirs=[str(d / "c0"),
                                                                   str(d / "c1")],
                            server_round=1, test_path=str(d / "test"), out_dir=str(d / "g1"))
    assert 0 < result["accuracy"] <= 1
    with np.load(d / "g1" / "weights.npz") as w:
        assert not w["w0001"].any() and w["w0000"].any()  # its own training rule held
    assert json.loads((d / "g1" / "spec.json").read_text())["spec"]["kind"] == "nobias"


def test_an_architecture_no_framework_federates_is_refused_by_name(tmp_path):
    from kfp_interop.steps import federated_init_step, federated_split_step

    federated_split_step(dataset="iris", clients=2, partition="iid",
                         partitions_dir=str(tmp_path / "p"), train_path=str(tmp_path / "tr"),
                         test_path=str(tmp_path / "te"))
    with pytest.raises(InvalidInputError, match=r"No framework federates architecture "
                                                r"'resnet'; frameworks with the federated "
                                                r"capability: sklearn, torch"):
        federated_init_step(train_path=str(tmp_path / "tr"), architecture="resnet",
                            out_dir=str(tmp_path / "g0"))
