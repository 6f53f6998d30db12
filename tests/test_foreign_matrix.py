"""The matrix of model files as users make them (tests/foreign_models.py): each case is
exported with parity, and its ONNX model, fed the sample's rows the way a client sends
them, gives what the framework itself computed on those rows; or it is refused by name
with what to do, and nothing is written. The table in docs/model-artifact.md is made
from the same cases."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from foreign_models import CASES, DOC, TF_SCRIPT, docs_section, table
from kfp_interop.metadata import load_metadata
from kfp_interop.onnx_model import ort_session
from kfp_interop.steps import export_file_step


def feeds(record, sample: str) -> dict:
    """The sample's rows as a client sends them: one FP32 matrix named input, or one
    [N, 1] tensor per column (strings for BYTES)."""
    frame = pd.read_csv(sample)
    if [i["name"] for i in record.inputs] == ["input"]:
        return {"input": frame[record.feature_names].to_numpy(np.float32)}
    return {i["name"]: (frame[[i["name"]]].astype(str).to_numpy(object)
                        if i["datatype"] == "BYTES" else
                        frame[[i["name"]]].to_numpy(np.float32)) for i in record.inputs}


def check_exported(case, out, sample, expected):
    record = load_metadata(str(out / "model.onnx"))
    assert record.parity["passed"], record.parity
    if case.inputs:
        assert [(i["name"], i["datatype"]) for i in record.inputs] == list(case.inputs)
    if case.feature_names:
        assert record.feature_names == list(case.feature_names)
    names = [o["name"] for o in record.outputs]
    assert names == (["label", "probabilities"] if record.task == "classification"
                     else ["variable"])
    got = dict(zip(names, ort_session(str(out / "model.onnx")).run(None, feeds(record,
                                                                             sample))))
    expected = np.asarray(expected, dtype=np.float64)
    if record.task == "classification":
        probs = got["probabilities"].astype(np.float64)
        assert probs.shape == expected.shape
        np.testing.assert_allclose(probs, expected, atol=1e-5)
        np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
        decisive = np.sort(expected, axis=1)[:, -1] - np.sort(expected, axis=1)[:, -2] > 1e-5
        assert np.array_equal(got["label"][decisive], expected.argmax(axis=1)[decisive])
    else:
        values = got["variable"].reshape(-1).astype(np.float64)
        np.testing.assert_allclose(values, expected.reshape(-1), rtol=1e-5, atol=1e-3)
    return record


def check_refused(case, error_type: str, message: str, out):
    assert error_type == case.outcome, message
    import re

    assert re.search(case.match, message, re.S), message
    assert not os.path.exists(out)


@pytest.mark.parametrize("case", [c for c in CASES if c.make], ids=lambda c: c.id)
def test_a_model_file_as_users_make_it(case, tmp_path):
    made = tmp_path / "made"
    made.mkdir()
    model, sample, expected = case.make(str(made))
    out = tmp_path / "out"
    target = ["--target-column", "target"]
    if case.outcome == "exported":
        from kfp_interop.cli import main

        code = main(["export", str(made / model), "--framework", case.framework,
                     "--sample", sample, *target, *case.args, "--output-dir", str(out)])
        assert code == 0
        check_exported(case, out, sample, expected)
        return
    args = dict(zip(case.args[::2], case.args[1::2]))
    with pytest.raises(Exception) as caught:
        export_file_step(model_path=str(made / model), framework=case.framework,
                         sample_path=sample, target_column="target",
                         architecture=args.get("--architecture", ""), out_dir=str(out))
    check_refused(case, type(caught.value).__name__, str(caught.value), out)
    assert str(made / model) in str(caught.value)  # the file is named


TF_CASES = [c for c in CASES if c.make is None]


@pytest.fixture(scope="module")
def tensorflow_results(tmp_path_factory):
    d = tmp_path_factory.mktemp("tf-matrix")
    done = subprocess.run([sys.executable, "-c", TF_SCRIPT, str(d), *[c.id for c in TF_CASES]],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULTS ")][-1]
    return d, json.loads(line[len("RESULTS "):])


@pytest.mark.parametrize("case", TF_CASES, ids=lambda c: c.id)
def test_a_savedmodel_as_users_make_it(case, tensorflow_results):
    d, results = tensorflow_results
    found = results[case.id]
    out = d / (case.id + "-out")
    if case.outcome == "exported":
        assert found["error"] is None, found["error"]
        check_exported(case, out, found["sample"], found["expected"])
    else:
        assert found["error"] is not None
        check_refused(case, *found["error"], out)


def test_the_docs_table_is_made_from_the_cases():
    with open(DOC) as f:
        assert docs_section(f.read()) == table(), (
            "docs/model-artifact.md is out of date: run python tests/foreign_models.py "
            "--write-docs")
