"""Other systems' metadata in: OIP model metadata, Seldon metadata, an MLflow MLmodel
signature and a Triton config.pbtxt (parsed with Triton's own ModelConfig schema) become
records. For each dialect, render -> import -> render gives the same document; documents
written by other systems' own code import too; the wrong dialect, or a document about
another model, is a named error that writes nothing."""

import json
import os

import onnx
import pytest

from kfp_interop.cli import main
from kfp_interop.errors import MetadataError
from kfp_interop.metadata import load_metadata, verify_onnx_sha256
from kfp_interop.metadata.importers import IMPORTERS, import_metadata
from kfp_interop.metadata.render import render

EXT = {"oip": "json", "seldon": "json", "mlflow": "json", "triton": "pbtxt", "adlik": "json"}


def write(path, document):
    with open(path, "w") as f:
        f.write(document if isinstance(document, str) else json.dumps(document, indent=2))
    return str(path)


@pytest.fixture(scope="module")
def mixed_onnx(tmp_path_factory):
    """A record with several inputs (BYTES among them), class labels and parity."""
    from kfp_interop.data import load_dataset
    from kfp_interop.steps import run_tabular

    d = tmp_path_factory.mktemp("mixed")
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples",
                        "own_training", "customers.csv")
    assert load_dataset(path, target_column="churned").text_columns
    paths = run_tabular(str(d), dataset=path, target_column="churned", framework="sklearn",
                        estimator="logistic_regression", model_name="churn")
    return os.path.join(paths["model"], "model.onnx")


@pytest.mark.parametrize("dialect", sorted(EXT))
@pytest.mark.parametrize("which", ["iris", "mixed", "adopted"])
def test_render_import_render_gives_the_same_document(dialect, which, iris_onnx, mixed_onnx,
                                                      tmp_path):
    if which == "adopted":  # a record of origin adopted, task other, no labels
        from kfp_interop.steps import adopt_onnx_step

        adopt_onnx_step(model_path=iris_onnx, name="adopted", task="other",
                   out_dir=str(tmp_path / "adopted"))
    model = {"iris": iris_onnx, "mixed": mixed_onnx,
             "adopted": str(tmp_path / "adopted" / "model.onnx")}[which]
    record = load_metadata(model)
    document = render(record, dialect)
    path = write(tmp_path / f"doc.{EXT[dialect]}", document)
    imported = import_metadata(path, dialect)
    assert render(imported, dialect) == document
    assert imported.origin == {"kind": "imported", "source": os.path.basename(path),
                               "format": dialect}
    assert imported.inputs == record.inputs and imported.outputs == record.outputs
    if dialect != "mlflow":  # a signature says nothing but the tensors
        assert (imported.name, imported.task, imported.class_labels) == (
            record.name, record.task, record.class_labels)
    # with the model it describes: checked against the graph, and embedded
    again = import_metadata(path, dialect, onnx_model=onnx.load(model), name=record.name)
    assert again.model["onnx_sha256"] == record.model["onnx_sha256"]
    assert render(again, dialect) == document


def test_cli_import_with_the_model_embeds_the_record(iris_onnx, tmp_path, capsys):
    config = write(tmp_path / "config.pbtxt", render(load_metadata(iris_onnx), "triton"))
    out = tmp_path / "out"
    assert main(["metadata", "import", "--from", "triton", config, "--onnx", iris_onnx,
                 "--output-dir", str(out)]) == 0
    record = verify_onnx_sha256(str(out / "model.onnx"))
    assert record.origin["format"] == "triton"
    assert json.loads(capsys.readouterr().out)["model"]["name"] == "iris"
    # the model goes on like any other: served, smoke-tested
    assert main(["deploy", str(out / "model.onnx"), "--target", "kserve", "--dry-run",
                 "--storage-uri", "s3://models/iris", "--output-dir", str(tmp_path / "m")]) == 0


def test_documents_written_by_other_systems(tmp_path):
    """An MLmodel saved by MLflow's own scikit-learn flavor (column-based signature), a
    Triton config with batching, and Seldon metadata without names or datatypes."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris(as_frame=True)
    X = iris.data
    model = LogisticRegression(max_iter=300).fit(X, iris.target)
    mlflow.sklearn.save_model(model, str(tmp_path / "sk"),
                              signature=infer_signature(X, model.predict(X)))
    record = import_metadata(str(tmp_path / "sk" / "MLmodel"), "mlflow", name="iris-lr",
                             labels=["setosa", "versicolor", "virginica"],
                             task="classification")
    assert record.inputs == [{"name": "input", "datatype": "FP64", "shape": [-1, 4]}]
    assert record.feature_names == list(X.columns)
    assert record.outputs == [{"name": "output_0", "datatype": "INT64", "shape": [-1]}]
    # mixed column types: one input per column, strings as BYTES
    mixed = pd.DataFrame({"age": [31.0, 40.5], "plan": ["basic", "pro"]})
    mlflow.sklearn.save_model(model, str(tmp_path / "mixed"),
                              signature=infer_signature(mixed, [0, 1]))
    record = import_metadata(str(tmp_path / "mixed" / "MLmodel"), "mlflow", name="m")
    assert [(i["name"], i["datatype"], i["shape"]) for i in record.inputs] == [
        ("age", "FP64", [-1, 1]), ("plan", "BYTES", [-1, 1])]
    assert record.task == "other"

    config = write(tmp_path / "config.pbtxt", """
name: "resnet-lite"
backend: "onnxruntime"
max_batch_size: 8
input [ { name: "image" data_type: TYPE_UINT8 dims: [ 3, 32, 32 ] } ]
output [ { name: "scores" data_type: TYPE_FP16 dims: [ 10 ] } ]
parameters { key: "team" value: { string_value: "vision" } }
""")
    record = import_metadata(config, "triton")
    assert record.name == "resnet-lite" and record.task == "other"
    assert record.inputs == [{"name": "image", "datatype": "UINT8", "shape": [-1, 3, 32, 32]}]
    assert record.outputs == [{"name": "scores", "datatype": "FP16", "shape": [-1, 10]}]
    assert record.properties == {"team": "vision"}
    assert 'key: "team"' in render(record, "triton")

    seldon = write(tmp_path / "seldon.json", {
        "name": "income", "versions": ["3"], "platform": "seldon",
        "inputs": [{"messagetype": "tensor", "schema": {"names": ["age", "hours"],
                                                        "shape": [2]}}],
        "outputs": [{"messagetype": "tensor", "schema": {"shape": [1]}}]})
    record = import_metadata(seldon, "seldon")
    assert (record.name, record.version, record.feature_names) == ("income", "3",
                                                                   ["age", "hours"])
    assert record.inputs == [{"name": "input", "datatype": "FP32", "shape": [-1, 2]}]


def test_wrong_dialect_is_named_and_nothing_is_written(iris_onnx, tmp_path):
    record = load_metadata(iris_onnx)
    docs = {d: write(tmp_path / f"doc-{d}.{EXT[d]}", render(record, d)) for d in EXT}
    expected = {("triton", "oip"): "not OIP metadata: not JSON",
                ("seldon", "oip"): "use --from seldon",
                ("oip", "seldon"): "use --from oip",
                ("oip", "mlflow"): "not an MLmodel file or MLflow signature",
                ("oip", "triton"): "not a Triton config.pbtxt",
                ("mlflow", "seldon"): "not Seldon metadata"}
    for (given, dialect), message in expected.items():
        out = tmp_path / f"out-{given}-{dialect}"
        assert main(["metadata", "import", "--from", dialect, docs[given],
                     "--output-dir", str(out)]) == 2
        with pytest.raises(MetadataError, match=message):
            import_metadata(docs[given], dialect)
        assert not out.exists()
    assert IMPORTERS.names() == ["adlik", "mlflow", "oip", "seldon", "triton"]


def test_a_document_about_another_model_is_refused(iris_onnx, diabetes_model, tmp_path):
    iris = load_metadata(iris_onnx)
    doc = write(tmp_path / "oip.json", render(iris, "oip"))
    diabetes = os.path.join(diabetes_model[0], "model.onnx")
    with pytest.raises(MetadataError, match="the ONNX graph has"):
        import_metadata(doc, "oip", onnx_model=onnx.load(diabetes))
    # same tensors, another graph: the sha256 the document gives is not this graph's
    other = onnx.load(iris_onnx)
    other.graph.doc_string = "retrained"
    with pytest.raises(MetadataError, match="describes another version"):
        import_metadata(doc, "oip", onnx_model=other)
    # a TensorFlow model's config describes no ONNX model on its own
    tf = render(iris, "triton").replace('platform: "onnxruntime_onnx"',
                                        'platform: "tensorflow_savedmodel"')
    with pytest.raises(MetadataError, match="'tensorflow_savedmodel' model.*--onnx"):
        import_metadata(write(tmp_path / "tf.pbtxt", tf), "triton")
    # names no serving platform accepts
    bad = render(iris, "oip") | {"name": "My_Model"}
    assert main(["metadata", "import", "--from", "oip", write(tmp_path / "n.json", bad),
                 "--output-dir", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()
