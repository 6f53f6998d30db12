"""The Python API outside the CLI: ``kfp_interop.run``, ``kfp_interop.submit``,
``kfp_interop.compile`` (kfp_interop.runs), parameters checked as typed values before
anything runs, and `import kfp_interop` still without kfp."""

import json
import subprocess
import sys

import pytest

import kfp_interop
from kfp_interop.errors import InvalidInputError, UnknownNameError


def test_the_api_is_reachable_from_the_package_without_importing_kfp_first():
    code = ("import sys, kfp_interop; assert 'kfp' not in sys.modules; "
            "from kfp_interop import runs; "
            "assert kfp_interop.run is runs.run and kfp_interop.compile is runs.compile; "
            "assert kfp_interop.submit is runs.submit; assert 'kfp' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(AttributeError):
        kfp_interop.no_such_thing  # noqa: B018


@pytest.mark.parametrize("params,message", [
    ({"datasett": "wine"}, "Unknown pipeline parameter 'datasett'"),
    ({"register": "false"}, "register='false' is a str; the pipeline takes a bool"),
    ({"test_size": "0.3"}, "is a str; the pipeline takes a float"),
    ({"seed": 1.5}, "is a float; the pipeline takes a int"),
    ({"seed": True}, "is a bool; the pipeline takes a int"),
])
def test_parameters_are_checked_before_anything_runs(params, message, tmp_path):
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(")):
        kfp_interop.run("tabular", params, output_dir=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_a_parameter_without_default_must_be_given(tmp_path):
    with pytest.raises(InvalidInputError, match=r"\['model_uri'\] have no default"):
        kfp_interop.run("onnx-import", {}, output_dir=str(tmp_path))
    with pytest.raises(UnknownNameError, match="Unknown runner 'kubernetes'"):
        kfp_interop.run("tabular", {}, output_dir=str(tmp_path), runner="kubernetes")


def test_run_and_compile_from_python(tmp_path):
    from kfp_interop.runs import check_params
    from kfp_interop.pipelines import load

    assert check_params(load("tabular"), {"test_size": 1}) == {"test_size": 1.0}
    summary = kfp_interop.run("tabular", {"dataset": "wine", "register": False},
                              output_dir=str(tmp_path / "out"))
    assert summary["status"] == "succeeded" and summary["smoke_test"]["passed"]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["pipeline"] == "tabular"
    path = kfp_interop.compile("tabular", str(tmp_path / "t.yaml"),
                               defaults={"dataset": "wine"})
    text = open(path).read()
    assert "defaultValue: wine" in text
    # the same bytes as the CLI's compile
    from kfp_interop.cli import main

    assert main(["compile", "tabular", "-o", str(tmp_path / "c.yaml"), "--param",
                 "dataset=wine"]) == 0
    assert (tmp_path / "c.yaml").read_text() == text
