"""The model folder's facts (``model_meta.json``) as one typed, validated object: what
training writes is what export reads, a folder or artifact metadata with a wrong fact is
refused by name before anything is exported, and no module but ``steps/model_dir.py``
reads or writes the file itself."""

import json
import os
import pathlib
import re

import pytest

from kfp_interop.errors import InvalidInputError
from kfp_interop.steps.model_dir import ModelMeta, read_model_meta, write_model_meta

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from kfp_interop.steps import load_data_step, train_step

    d = tmp_path_factory.mktemp("trained")
    load_data_step(dataset="breast_cancer", train_path=str(d / "tr"), test_path=str(d / "te"))
    meta, _ = train_step(train_path=str(d / "tr"), test_path=str(d / "te"),
                         framework="xgboost", model_dir=str(d / "model"))
    return d, meta


def test_what_training_writes_is_what_the_next_stage_reads(trained):
    d, meta = trained
    assert isinstance(meta, ModelMeta)
    again = read_model_meta(str(d / "model"))
    assert again == meta
    assert meta.framework == "xgboost" and meta.task == "classification"
    assert meta.rows == meta.train_rows + meta.test_rows and isinstance(meta.rows, int)
    assert meta.roc_curve and set(meta.roc_curve) >= {"fpr", "tpr", "thresholds"}
    assert meta.training()["dataset"] == "breast_cancer"
    # the artifact's metadata leaves the long curve in the folder
    assert "roc_curve" not in meta.artifact_metadata()
    assert json.loads(json.dumps(meta.to_dict())) == meta.to_dict()


@pytest.mark.parametrize("change, message", [
    ({"rows": "455"}, r"rows='455' is a str; it must be int"),
    ({"task": "clustering"}, r"task 'clustering' must be classification or regression"),
    ({"native_sha256": "abc"}, r"native_sha256='abc' is not a sha256"),
    ({"feature_names": ["a", "a"]}, r"repeats a name"),
    ({"text_columns": ["not-a-feature"]}, r"text_columns \['not-a-feature'\] are not among"),
    ({"metrics": [0.9]}, r"metrics=\[0.9\] is a list; it must be dict"),
    ({"seed": True}, r"seed=True is a bool; it must be int"),
    ({"framework": None}, r"lacks \['framework'\]"),
])
def test_a_folder_with_a_wrong_fact_is_refused_by_name_and_nothing_is_exported(
        trained, tmp_path, change, message):
    import shutil

    from kfp_interop.steps import export_onnx_step

    d, meta = trained
    shutil.copytree(d / "model", tmp_path / "model")
    data = {**meta.to_dict(), **change}
    (tmp_path / "model" / "model_meta.json").write_text(json.dumps(data))
    with pytest.raises(InvalidInputError, match=message) as e:
        export_onnx_step(model_dir=str(tmp_path / "model"), test_path=str(d / "te"),
                         out_dir=str(tmp_path / "out"))
    assert "model_meta.json" in str(e.value)  # says where the wrong fact is
    assert not (tmp_path / "out").exists()


def test_a_folder_that_is_not_json_is_refused(tmp_path):
    (tmp_path / "model_meta.json").write_text("{not json")
    with pytest.raises(InvalidInputError, match="is not JSON"):
        read_model_meta(str(tmp_path))
    with pytest.raises(InvalidInputError, match="holds no model_meta.json"):
        read_model_meta(str(tmp_path / "nothing-here"))


def test_artifact_metadata_from_kfp_is_typed_on_the_way_in(tmp_path):
    """KFP stores artifact metadata numbers as floats, and a user may give class labels
    as numbers: the facts come back as the types the record needs; unknown keys (KFP's
    own, e.g. display_name) are left out."""
    meta = read_model_meta(str(tmp_path), {
        "framework": "sklearn", "task": "classification", "feature_names": ["a", 2],
        "class_labels": [0, 1.0], "rows": 150.0, "seed": 42.0, "display_name": "model"})
    assert meta.feature_names == ["a", "2"] and meta.class_labels == ["0", "1"]
    assert meta.rows == 150 and isinstance(meta.rows, int) and meta.seed == 42
    assert meta.origin == {"kind": "exported", "source": "a model artifact"}
    assert meta.training() is None  # not every training fact given: no training block
    with pytest.raises(InvalidInputError, match=r"rows=150.5 is a float"):
        read_model_meta(str(tmp_path), {"framework": "sklearn", "task": "regression",
                                        "feature_names": ["a"], "rows": 150.5})
    with pytest.raises(InvalidInputError, match=r"lacks \['class_labels'\]"):
        read_model_meta(str(tmp_path), {"framework": "sklearn", "task": "classification",
                                        "feature_names": ["a"]})


def test_one_writer_takes_only_the_typed_object(tmp_path):
    with pytest.raises(TypeError, match="takes a ModelMeta"):
        write_model_meta(str(tmp_path), {"framework": "sklearn"})
    meta = ModelMeta(framework="sklearn", task="regression", feature_names=["x"])
    write_model_meta(str(tmp_path), meta)
    assert read_model_meta(str(tmp_path)) == meta
    with pytest.raises(InvalidInputError, match="must be classification or regression"):
        meta.replace(task="ranking")


def test_no_module_but_model_dir_touches_the_file_itself():
    """Every stage goes through ModelMeta: nothing else opens ``model_meta.json``."""
    pattern = re.compile(r"MODEL_META_FILENAME|model_meta\.json\"|model_meta\.json'")
    offenders = []
    for base in ("sdk/kfp_interop", "components", "pipelines"):
        for path in (ROOT / base).rglob("*.py"):
            rel = os.path.relpath(path, ROOT)
            if rel in ("sdk/kfp_interop/steps/model_dir.py", "sdk/kfp_interop/constants.py"):
                continue
            if pattern.search(path.read_text()):
                offenders.append(rel)
    assert offenders == []
