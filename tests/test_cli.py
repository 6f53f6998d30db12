"""The kfp-interop command line: listing, compiling, metadata commands, bad arguments."""

import json
import os

import onnx
import pytest
import yaml

from kfp_interop.cli import main


def test_pipelines_lists_tabular(capsys):
    assert main(["pipelines"]) == 0
    assert capsys.readouterr().out.startswith("tabular")


def test_compile_writes_kfp_ir(tmp_path, capsys):
    out = tmp_path / "t.yaml"
    assert main(["compile", "tabular", "-o", str(out)]) == 0
    spec = yaml.safe_load(out.read_text())
    assert spec["pipelineInfo"]["name"] == "tabular"
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert {"dataset", "target_column", "framework", "estimator", "hyperparameters",
            "parity_tolerance"} <= set(params)
    assert params["parity_tolerance"]["defaultValue"] == 1e-4
    assert len(spec["deploymentSpec"]["executors"]) == 6


def test_compile_unknown_pipeline(capsys):
    assert main(["compile", "tabulr"]) == 2
    assert "Unknown pipeline 'tabulr'; known: tabular" in capsys.readouterr().err


def test_metadata_show_validate_render(iris_onnx, capsys):
    assert main(["metadata", "show", iris_onnx]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["name"] == "iris"
    assert main(["metadata", "validate", iris_onnx]) == 0
    assert "OK" in capsys.readouterr().out
    for fmt in ("oip", "seldon", "mlflow", "kfp"):
        assert main(["metadata", "render", "--format", fmt, iris_onnx]) == 0
        assert isinstance(json.loads(capsys.readouterr().out), dict)
    assert main(["metadata", "render", "--format", "triton", iris_onnx]) == 0
    assert 'platform: "onnxruntime_onnx"' in capsys.readouterr().out


def test_metadata_validate_fails_on_tampered_or_recordless(iris_onnx, tmp_path, capsys):
    model = onnx.load(iris_onnx)
    model.graph.node[0].name = "edited"
    onnx.save(model, str(tmp_path / "t.onnx"))
    assert main(["metadata", "validate", str(tmp_path / "t.onnx")]) == 2
    assert "graph changed" in capsys.readouterr().err
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "bare.onnx"))
    assert main(["metadata", "validate", str(tmp_path / "bare.onnx")]) == 2
    assert "carries no kfp-interop" in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["run", "tabular", "--local", "--param", "colour=red"], "Unknown pipeline parameter 'colour'"),
    (["run", "tabular", "--local", "--param", "seed=abc"], "seed='abc' is not a valid int"),
    (["run", "tabular", "--local", "--param", "scaler=maybe"], "not a valid bool"),
    (["run", "tabular", "--local", "--param", "seed"], "must look like KEY=VALUE"),
    (["run", "tabular"], "add --local"),
])
def test_run_argument_errors(args, message, capsys, tmp_path):
    assert main(args + ["--output-dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "summary.json")
