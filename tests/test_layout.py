"""The library's shape: import contracts (import-linter), extension points that are
registries (a throwaway deploy target and framework reach the CLI and the flows),
defaults stated once, one atomic-write helper, and failed steps handing their error over
in a file."""

import inspect
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import lint_imports  # noqa: E402


# -- imports go one way ------------------------------------------------------------------
def test_import_contracts_hold():
    proc = lint_imports.lint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 kept, 0 broken" in proc.stdout
    assert " 0 import cycle(s)" in proc.stdout


def test_plain_lint_imports_works_in_a_checkout():
    """`lint-imports` run as is from the repository root (components/ and pipelines/ are
    not under sdk/kfp_interop there) checks the library's contracts."""
    exe = os.path.join(os.path.dirname(sys.executable), "lint-imports")
    proc = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 kept, 0 broken" in proc.stdout


@pytest.mark.parametrize("module,line,broken", [
    ("sdk/kfp_interop/frameworks/sklearn.py", "from kfp_interop.steps import stage",
     r"Layers: .* BROKEN"),
    ("sdk/kfp_interop/storage/transfer.py", "from kfp_interop.deploy import deploy",
     r"Layers: .* BROKEN"),
    # a layer optional in a checkout is required (and checked) in the installed tree
    ("pipelines/tabular.py", "from kfp_interop.cli import main", r"Layers: .* BROKEN"),
    ("sdk/kfp_interop/export/core.py", "from kfp_interop.export import keras",
     r"No import cycles .* BROKEN"),
    ("sdk/kfp_interop/metadata/record.py", "import kfp", r"never imports kfp .* BROKEN"),
    ("sdk/kfp_interop/deploy/kserve.py", "def f():\n    from kfp import dsl",
     r"never imports kfp .* BROKEN"),
    # a module importing its own package's __init__ (inside a function, too): a cycle
    # the sibling contract cannot see
    ("sdk/kfp_interop/deploy/local.py", "def f():\n    from kfp_interop.deploy import deploy",
     r"import cycle: kfp_interop.deploy <-> kfp_interop.deploy.local\n"),
])
def test_import_contracts_catch_violations(tmp_path, module, line, broken):
    for part in ("sdk", "components", "pipelines"):
        shutil.copytree(os.path.join(ROOT, part), tmp_path / part,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(os.path.join(ROOT, ".importlinter"), tmp_path / ".importlinter")
    with open(tmp_path / module, "a") as f:
        f.write("\n" + line + "\n")
    proc = lint_imports.lint(str(tmp_path))
    assert proc.returncode != 0
    assert re.search(broken, proc.stdout), proc.stdout


# -- one atomic-write helper ---------------------------------------------------------------
def test_every_writer_goes_through_the_atomic_write_helper():
    """Only kfp_interop/files.py renames temporary files into place."""
    offenders = []
    for folder in ("sdk", "components", "pipelines"):
        for dirpath, _, names in os.walk(os.path.join(ROOT, folder)):
            for name in names:
                path = os.path.join(dirpath, name)
                if not name.endswith(".py") or path.endswith(os.path.join("kfp_interop",
                                                                           "files.py")):
                    continue
                text = open(path).read()
                if "os.replace(" in text or '".partial"' in text or "+ \".partial" in text:
                    offenders.append(os.path.relpath(path, ROOT))
    assert not offenders, f"write through kfp_interop.files instead: {offenders}"


def test_atomic_write_leaves_the_old_file_or_nothing(tmp_path):
    from kfp_interop.files import atomic_write, atomic_writer

    target = tmp_path / "out.json"
    atomic_write(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_writer(target, "w") as f:
            f.write("half of the new")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.json"]  # no temporary file left behind


# -- defaults stated once --------------------------------------------------------------------
def _defaults(component) -> dict:
    return {name: spec.default for name, spec in component.component_spec.inputs.items()
            if spec.default is not None}


def test_component_and_pipeline_defaults_come_from_the_library():
    from kfp_interop import constants as c
    from kfp_interop.components import COMPONENTS
    from kfp_interop.deploy import DEPLOY_TARGETS
    from kfp_interop.frameworks import FRAMEWORKS
    from kfp_interop.pipelines import PIPELINES, load
    from kfp_interop.storage import LAYOUTS

    d = {name: _defaults(comp) for name, comp in COMPONENTS.items()}
    assert d["export_onnx"]["opset"] == c.DEFAULT_OPSET
    assert d["export_onnx"]["parity_tolerance"] == c.DEFAULT_TOLERANCE
    assert d["smoke_test"]["tolerance"] == c.DEFAULT_TOLERANCE
    assert d["load_data"]["test_size"] == c.DEFAULT_TEST_SIZE
    assert all(v["seed"] == c.DEFAULT_SEED for v in d.values() if "seed" in v)
    fw = FRAMEWORKS.get(d["train"]["framework"])
    assert fw.family == "tabular" and d["train"]["estimator"] == fw.default_estimator
    assert FRAMEWORKS.get(d["train_deep"]["framework"]).family == "deep"
    assert d["deploy"]["target"] in DEPLOY_TARGETS
    assert d["upload_model"]["layout"] in LAYOUTS
    expected = {"opset": c.DEFAULT_OPSET, "parity_tolerance": c.DEFAULT_TOLERANCE,
                "seed": c.DEFAULT_SEED}
    for name in PIPELINES.names():
        params = inspect.signature(load(name).pipeline_func).parameters
        for key, value in expected.items():
            assert key not in params or params[key].default == value, (name, key)
        assert params["parity_tolerance"].default == c.DEFAULT_TOLERANCE
        assert params["deploy_target"].default in DEPLOY_TARGETS


def test_component_docstrings_list_the_registries():
    from kfp_interop.components import train, upload_model
    from kfp_interop.deploy import DEPLOY_TARGETS

    described = train.component_spec.inputs["framework"].description
    assert described == "lightgbm, sklearn, xgboost."
    from kfp_interop.components import deploy

    assert deploy.component_spec.inputs["target"].description == \
        ", ".join(DEPLOY_TARGETS.names()) + "."
    assert "mlserver, triton" in upload_model.component_spec.inputs["layout"].description


# -- extension points are registries --------------------------------------------------------
@pytest.fixture
def echo_target():
    """A throwaway deploy target registered for one test."""
    from kfp_interop.deploy import DEPLOY_TARGETS, DeployTarget, register_target

    class EchoTarget(DeployTarget):
        """Remembers what it was asked to deploy (a test double of a platform)."""

        name = "echo-test"
        calls: list = []

        def deploy(self, model, *, name="", dry_run=False, output_dir=None, **options):
            self.calls.append(("deploy", model, name, options.get("namespace")))
            return {"target": self.name, "name": name or "echo", "model_name": name or "echo",
                    "endpoint": None, "dry_run": dry_run}

        def undeploy(self, deployment, *, client=None):
            self.calls.append(("undeploy", deployment["name"]))
            return True

        def rollback(self, deployment, *, client=None):
            return "echo: rolled back"

    target = register_target(EchoTarget())
    yield target
    DEPLOY_TARGETS.unregister("echo-test")


def test_a_new_deploy_target_reaches_the_cli_and_the_deploy_flow(echo_target, iris_model,
                                                                  tmp_path, capsys):
    from kfp_interop.cli import main
    from kfp_interop.cli.parser import build_parser
    from kfp_interop.deploy import rollback, undeploy
    from kfp_interop.steps import deploy_step

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    for command in ("deploy", "delete"):
        target_arg = next(a for a in sub[command]._actions if a.dest == "target")
        assert "echo-test" in target_arg.choices
    assert main(["targets"]) == 0
    assert "echo-test" in capsys.readouterr().out
    model_dir = iris_model[0]
    assert main(["deploy", model_dir, "--target", "echo-test", "--namespace", "ns1"]) == 0
    assert echo_target.calls[-1] == ("deploy", model_dir, "", "ns1")
    info, metadata = deploy_step(model_dir=model_dir, target="echo-test", name="iris",
                                 out_dir=str(tmp_path / "deployment"))
    assert json.load(open(tmp_path / "deployment" / "deployment.json")) == info
    assert metadata["target"] == "echo-test" and info["name"] == "iris"
    assert rollback(info) == "echo: rolled back"
    assert undeploy(info) and echo_target.calls[-1] == ("undeploy", "iris")
    # the delete verb it did not implement is a typed error, named
    assert main(["delete", "--target", "echo-test", "--name", "iris"]) == 2
    assert "cannot delete deployments" in capsys.readouterr().err


def test_the_local_target_refuses_delete_with_a_typed_error():
    from kfp_interop.deploy import delete
    from kfp_interop.errors import UnsupportedOperationError

    with pytest.raises(UnsupportedOperationError, match="local target has no deployments"):
        delete("local", "iris")


@pytest.fixture
def nb_framework():
    """A throwaway tabular framework: scikit-learn's GaussianNB under its own name, with
    an exporter registered for it."""
    from kfp_interop.export import EXPORTERS, register_exporter
    from kfp_interop.export.sklearn import export_sklearn
    from kfp_interop.frameworks import FRAMEWORKS, register_framework
    from kfp_interop.frameworks.sklearn import SklearnFramework

    class NaiveBayes(SklearnFramework):
        name = "naive-bayes-test"
        estimators = {"gaussian_nb": {"classification": "sklearn.naive_bayes:GaussianNB"}}
        default_estimator = "gaussian_nb"

    fw = register_framework(NaiveBayes())
    register_exporter(fw.name, export_sklearn)
    yield fw
    FRAMEWORKS.unregister(fw.name)
    EXPORTERS.unregister(fw.name)


def test_a_new_framework_reaches_the_cli_and_the_export_flow(nb_framework, tmp_path, capsys):
    from kfp_interop.cli import main
    from kfp_interop.errors import UnknownNameError
    from kfp_interop.metadata import load_metadata
    from kfp_interop.steps import run_tabular
    from kfp_interop.training import train_model

    assert main(["frameworks"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.startswith("naive-bayes-test"))
    assert row.split()[1:5] == ["tabular", "skops", "yes", "gaussian_nb"]
    paths = run_tabular(str(tmp_path), dataset="wine", framework="naive-bayes-test",
                        estimator="", model_name="wine-nb")
    record = load_metadata(os.path.join(paths["model"], "model.onnx"))
    assert record.framework["name"] == "naive-bayes-test"
    assert record.framework["estimator"] == "GaussianNB" and record.parity["passed"]
    from kfp_interop.data import load_dataset, split_dataset

    train, test = split_dataset(load_dataset("iris"))
    with pytest.raises(UnknownNameError, match="known: lightgbm, naive-bayes-test, sklearn"):
        train_model(train, test, framework="catboost")


# -- failed steps hand their error over -------------------------------------------------
def test_a_failed_step_leaves_its_typed_error_beside_its_outputs(tmp_path):
    from kfp_interop.errors import UnknownDatasetError
    from kfp_interop.steps import load_data_step

    task = tmp_path / "load-data"
    with pytest.raises(UnknownDatasetError):
        load_data_step(dataset="no-such-set", train_path=str(task / "train_data"),
                       test_path=str(task / "test_data"))
    record = json.load(open(task / "error.json"))
    assert record["type"] == "kfp_interop.errors.UnknownDatasetError" and record["typed"]
    assert "no-such-set" in record["message"]
    assert not (task / "train_data").exists()


def test_the_run_summary_reads_the_handed_over_error_not_the_log(tmp_path):
    from kfp_interop.runs.summary import build_summary
    from kfp_interop.errors import ParityError, error_record
    from kfp_interop.files import atomic_write_json

    run = tmp_path / "run"
    (run / "load-data").mkdir(parents=True)
    (run / "load-data" / "executor_output.json").write_text("{}")
    (run / "export-onnx").mkdir()
    atomic_write_json(run / "export-onnx" / "error.json",
                      error_record(ParityError("Parity gate failed: 0.5 exceeds 0.0001")))
    log = tmp_path / "run.log"
    log.write_text("nothing typed in here\n")
    s = build_summary("tabular", str(run), str(tmp_path), "failed", {}, 1.0, str(log))
    assert s["failed_task"] == "export-onnx"
    assert s["error"] == "kfp_interop.errors.ParityError: Parity gate failed: 0.5 exceeds 0.0001"


# -- the docs' tables come from the registries ---------------------------------------------
def test_docs_registry_tables_are_fresh():
    import render_docs

    assert render_docs.main(["--check"]) == 0, "run python scripts/render_docs.py"


def test_docs_tables_follow_the_registries(echo_target, nb_framework):
    import render_docs

    tables = render_docs.tables()
    assert "| `echo-test` | a process | `test_layout` |" in tables["targets"]
    assert "`naive-bayes-test`" in tables["frameworks"]
    assert "`gaussian_nb`" in tables["frameworks"]


def test_a_writer_killed_mid_write_leaves_a_whole_file(tmp_path):
    """SIGKILL a process rewriting a 32 MB file in a loop, five times or more: the target always
    holds the old content or one whole new version, never a torn one."""
    import random
    import signal
    import subprocess
    import time

    from kfp_interop.files import atomic_write

    target = tmp_path / "model.bin"
    old = b"old" * 1000
    atomic_write(target, old)
    size = 32 << 20
    code = ("import itertools, sys\nfrom kfp_interop.files import atomic_write\n"
            "print('ready', flush=True)\n"
            "for i in itertools.count(1):\n"
            f"    atomic_write({str(target)!r}, bytes([i % 251]) * {size})\n")
    rng = random.Random(7)
    kills, leftovers = 0, []
    # at least five kills, and on until one lands mid-write (a kill between two writes
    # proves nothing; on a busy machine several may), at most forty
    while kills < 5 or (not leftovers and kills < 40):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.2, 0.8))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        kills += 1
        data = target.read_bytes()
        assert data == old or (len(data) == size and data.count(data[:1]) == size)
        leftovers = [p.name for p in tmp_path.iterdir() if p.name != "model.bin"]
    # the kills did land mid-write: what they cut short is a temporary file, not the target
    assert leftovers and all(n.startswith(".model.bin.") and n.endswith(".partial")
                             for n in leftovers)


def test_the_bad_input_table_names_real_tests():
    """docs/errors.md: at least 40 rows, and every test it cites exists."""
    import ast

    text = open(os.path.join(ROOT, "docs", "errors.md")).read()
    rows = [line for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| bad input")]
    assert len(rows) >= 40, len(rows)
    cited = set(re.findall(r"`(test_[a-z_]+\.py)::(test_[a-z0-9_]+)`", text))
    assert len(cited) >= 40
    missing = []
    for module, name in sorted(cited):
        tree = ast.parse(open(os.path.join(ROOT, "tests", module)).read())
        if name not in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}:
            missing.append(f"{module}::{name}")
    assert not missing, missing
    assert all(re.search(r"`test_[a-z_]+\.py::test_", row) for row in rows)


def test_every_component_parameter_is_described():
    """Every parameter input of every component has a description in its compiled spec
    (what the Kubeflow UI shows beside the field)."""
    from kfp_interop.components import COMPONENTS

    missing = {name: [k for k, v in (c.component_spec.inputs or {}).items()
                      if not v.description and not str(v.type).startswith("system.")]
               for name, c in COMPONENTS.items()}
    assert not {k: v for k, v in missing.items() if v}


def test_every_component_calls_the_step_named_after_it():
    """components/<name> is a thin shell over kfp_interop.steps.<name>_step."""
    import inspect

    import kfp_interop.steps as steps
    from kfp_interop.components import COMPONENTS

    for name, component in COMPONENTS.items():
        assert hasattr(steps, f"{name}_step"), name
        source = inspect.getsource(component.python_func)
        assert f"{name}_step(" in source, name
