"""Converter failures reach the user in our words: a typed error naming the model file,
the cause and what to do; never the converter's raw message alone."""

import numpy as np
import pytest

from kfp_interop.errors import ExportError, UnsupportedModelError
from kfp_interop.export import export_onnx
from kfp_interop.export.failures import KNOWN_FAILURES, explain
from kfp_interop.frameworks import NativeModel


def test_a_module_that_branches_on_values_is_named(tmp_path):
    import torch

    from deep_models import Branchy

    native = NativeModel(Branchy(4, 3).eval(), "torch", "classification")
    native.source = "'branchy.pt'"
    with pytest.raises(UnsupportedModelError) as caught:
        export_onnx(native, n_features=4)
    message = str(caught.value)
    assert message.startswith("torch.onnx cannot convert 'branchy.pt': its forward "
                              "branches in Python on the values of a tensor")
    assert "torch.where" in message


def test_an_estimator_without_converter_is_named():
    from sklearn.datasets import load_diabetes
    from sklearn.kernel_ridge import KernelRidge

    X, y = load_diabetes(return_X_y=True)
    native = NativeModel(KernelRidge().fit(X, y), "sklearn", "regression")
    native.source = "'kr.skops'"
    with pytest.raises(UnsupportedModelError, match=r"skl2onnx cannot convert 'kr.skops': it "
                                                    r"has no converter for KernelRidge"):
        export_onnx(native, n_features=X.shape[1])


def test_an_unknown_failure_is_ours_and_quotes_the_converter():
    error = explain("onnxmltools", ValueError("something new\nwith details"),
                    source="'m.json'")
    assert isinstance(error, ExportError)
    assert str(error).startswith("onnxmltools failed to convert 'm.json', for a reason")
    assert "'something new'" in str(error) and "details" not in str(error)


@pytest.mark.parametrize("known", KNOWN_FAILURES, ids=lambda k: f"{k.converter}:{k.pattern[:20]}")
def test_every_known_failure_reads_as_a_sentence(known):
    """Each entry formats with its groups into 'X cannot convert F: cause. To export
    it, what to do.' (an entry whose pattern and text disagree fails here)."""
    import re

    sample = {"Unexpected objective": "Unexpected objective: reg:foo",
              "Unable to find column": "Unable to find column name 'age' among names",
              "Unsupported ops": "Unsupported ops: Counter({'Foo': 1})",
              "[Oo]pset": "Opset 99 is not supported yet"}
    text = next((v for k, v in sample.items() if k in known.pattern),
                re.sub(r"[\\\[\]()|?*+^$]", "", known.pattern.split("|")[0]).replace(
                    "Dd", "D").replace("Ss", "S"))
    error = explain(known.converter, RuntimeError(text), source="'f'")
    assert isinstance(error, known.error), (text, error)
    assert str(error).startswith(f"{known.converter} cannot convert 'f': ")
    assert ". To export it, " in str(error) and str(error).endswith(".")
    assert not re.search(r"\{\d+\}|\{\{", str(error))  # every placeholder filled
