"""`kfp-interop validate-repo`: a Triton-layout repository is checked as Triton and KServe
will read it, in a folder and on a real S3 server. Every kind of problem is named with
its object, and the command exits non-zero."""

import json
import os
import shutil
import uuid

import pytest

from kfp_interop.cli import main
from kfp_interop.errors import StorageError
from kfp_interop.storage import S3Settings, upload, validate_repository


@pytest.fixture
def repo(tmp_path, iris_onnx, diabetes_model):
    root = tmp_path / "repo"
    upload(iris_onnx, str(root))
    upload(os.path.join(diabetes_model[0], "model.onnx"), str(root))
    return root


def problems(root):
    return [str(p) for p in validate_repository(str(root))["problems"]]


def test_an_uploaded_repository_is_valid(repo, capsys):
    report = validate_repository(str(repo))
    assert report["problems"] == []
    assert report["models"] == {"diabetes": {"versions": ["1"], "manifest": True},
                                "iris": {"versions": ["1"], "manifest": True}}
    assert main(["validate-repo", str(repo)]) == 0
    assert "2 model(s), 0 problem(s)" in capsys.readouterr().out


def test_a_renamed_folder_is_named(repo, capsys):
    """The commonest cause of 'Ready, then unknown model' in KServe."""
    shutil.move(repo / "iris", repo / "iris-v2")
    found = problems(repo)
    assert found == [
        "iris-v2/config.pbtxt: names the model 'iris' but sits in folder 'iris-v2': Triton "
        "refuses it, and KServe then answers 'unknown model'. Rename the folder or the "
        "config's name.",
        "iris-v2/kfp-interop-manifest.json: was written for model folder 'iris'."]
    assert main(["validate-repo", str(repo), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [p["key"] for p in report["problems"]] == ["iris-v2/config.pbtxt",
                                                      "iris-v2/kfp-interop-manifest.json"]


def test_versions_config_and_tensors(repo):
    config = (repo / "iris" / "config.pbtxt").read_text()
    (repo / "iris" / "config.pbtxt").write_text(
        config.replace("TYPE_INT64", "TYPE_INT32").replace("dims: [ -1, 4 ]", "dims: [ -1, 5 ]")
        .replace("versions: [ 1 ]", "versions: [ 1, 2 ]"))
    (repo / "iris" / "latest").mkdir()
    (repo / "iris" / "latest" / "model.onnx").write_bytes(b"")
    (repo / "iris" / "3").mkdir()
    (repo / "iris" / "3" / "model.onnx").write_bytes(b"not onnx")
    (repo / "iris" / "4").mkdir()
    (repo / "iris" / "4" / "notes.txt").write_text("the model went elsewhere")
    found = "\n".join(problems(repo))
    assert "iris/latest/: is not a numeric version folder" in found
    assert "iris/config.pbtxt: version_policy asks for version(s) ['2'], which have no folder" \
        in found
    assert ("iris/1/model.onnx: config output 'label' is TYPE_INT32, the graph's is INT64"
            in found)
    assert ("iris/1/model.onnx: config input 'input' has dims [-1, 5] (with the batch when "
            "max_batch_size > 0), the graph's shape is [-1, 4]") in found
    assert "iris/3/model.onnx: 'iris/3/model.onnx' is not a readable ONNX model" in found
    assert "iris/config.pbtxt: differs from the sha256 in the manifest" in found
    assert "iris/3/model.onnx: is not in the manifest" in found
    assert "iris/4/model.onnx: missing: the version folder holds no model file." in found
    assert not any(p.startswith("diabetes/") for p in problems(repo))


def test_unparsable_config_missing_pieces_and_strays(repo):
    (repo / "iris" / "config.pbtxt").write_text('name: "iris"\nplatfrom: "onnxruntime_onnx"\n')
    os.remove(repo / "diabetes" / "1" / "model.onnx")
    (repo / "README.md").write_text("models")
    found = "\n".join(problems(repo))
    assert "README.md: is a file at the repository root" in found
    assert "iris/config.pbtxt: 'iris/config.pbtxt' is not a Triton config.pbtxt: 2:1 : " \
        in found and "platfrom" in found
    # (an object store has no empty folders: without its file, the version is gone)
    assert "diabetes/: has no numeric version folder (e.g. diabetes/1/model.onnx)." in found
    assert "diabetes/1/model.onnx: is in the manifest but missing." in found


def test_a_record_of_another_graph_and_a_foreign_repository(repo, tmp_path, iris_onnx):
    shutil.copy(repo / "diabetes" / "model.metadata.json", repo / "iris" / "model.metadata.json")
    found = problems(repo)
    assert any(p.startswith("iris/model.metadata.json: describes the graph with sha256")
               for p in found)
    # a repository written by hand (no record, no manifest): checked as Triton reads it
    foreign = tmp_path / "foreign"
    (foreign / "iris" / "1").mkdir(parents=True)
    shutil.copy(iris_onnx, foreign / "iris" / "1" / "model.onnx")
    shutil.copy(repo / "iris" / "config.pbtxt", foreign / "iris" / "config.pbtxt")
    assert problems(foreign) == []
    os.remove(foreign / "iris" / "config.pbtxt")
    assert problems(foreign) == ["iris/config.pbtxt: missing: kfp-interop repositories carry "
                                 "the config Triton serves the model with."]


def test_nothing_there_is_an_error(tmp_path):
    with pytest.raises(StorageError, match="empty or does not exist"):
        validate_repository(str(tmp_path / "absent"))
    assert main(["validate-repo", str(tmp_path / "absent")]) == 2


def test_a_repository_on_s3(s3_env, iris_onnx, monkeypatch):
    settings = S3Settings.from_env(s3_env)
    bucket = f"repo-{uuid.uuid4().hex[:8]}"
    settings.client().make_bucket(bucket)
    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    uri = f"s3://{bucket}/models"
    upload(iris_onnx, uri, settings=settings)
    upload(iris_onnx, uri, name="iris-b", settings=settings)
    report = validate_repository(uri, settings=settings)
    assert report["problems"] == [] and sorted(report["models"]) == ["iris", "iris-b"]
    # an object replaced behind the manifest's back
    client = settings.client()
    import io

    client.put_object(bucket, "models/iris-b/config.pbtxt", io.BytesIO(b'name: "iris"\n'), 13)
    found = [str(p) for p in validate_repository(uri, settings=settings)["problems"]]
    assert "iris-b/config.pbtxt: names the model 'iris' but sits in folder 'iris-b'" \
        in "\n".join(found)
    assert main(["validate-repo", uri]) == 1
