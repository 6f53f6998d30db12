"""The pipeline's stages as plain functions over files and metadata dicts.

Each KFP component in ``components/`` is a thin wrapper over one function here: it
passes artifact paths in, and copies what comes back onto its output artifacts' metadata
(for the Kubeflow UI). Between stages the facts travel *inside* the artifacts, exactly
typed: a split's schema in its Parquet metadata, a model's context in
``model_meta.json`` in its folder (KFP artifact metadata would turn ints into floats).
Everything is testable without KFP. A stage writes its outputs only after every check
passed (files go to temporary names first), so a failed stage leaves no output that
looks complete.
"""

from __future__ import annotations

import os
from typing import Any

from kfp_interop.errors import InvalidInputError

ONNX_FILENAME = "model.onnx"
MODEL_META_FILENAME = "model_meta.json"


def write_model_meta(directory: str, meta: dict[str, Any]) -> None:
    import json

    path = os.path.join(directory, MODEL_META_FILENAME)
    with open(path + ".partial", "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
    os.replace(path + ".partial", path)


def model_meta(data_meta: dict[str, Any], *, framework: str, framework_version: str,
               estimator: str, task: str, hyperparameters: dict, seed: int, metrics: dict,
               saved: dict, **extra: Any) -> dict[str, Any]:
    """The context a trained model's folder carries (``model_meta.json``): how it was
    trained, on what data (from the split's metadata), and its native file."""
    return {
        "framework": framework, "framework_version": framework_version,
        "estimator": estimator, "task": task, "hyperparameters": hyperparameters,
        "seed": seed, "metrics": metrics, "feature_names": data_meta["feature_names"],
        "class_labels": data_meta.get("class_labels"), "target_name": data_meta["target_name"],
        "dataset": data_meta["source"], "data_sha256": data_meta["data_sha256"],
        "rows": data_meta["rows"], "train_rows": data_meta["train_rows"],
        "test_rows": data_meta["test_rows"], "native_format": saved["format"],
        "native_file": saved["file"], "native_sha256": saved["sha256"], **extra,
    }


def read_model_meta(directory: str) -> dict[str, Any]:
    """The context a model folder carries (written by train and export)."""
    import json

    path = os.path.join(directory, MODEL_META_FILENAME)
    if not os.path.isfile(path):
        raise InvalidInputError(f"{directory!r} holds no {MODEL_META_FILENAME}: pass a model "
                                "produced by kfp-interop's train or export_onnx step.")
    with open(path) as f:
        return json.load(f)

__all__ = ["load_data_step", "train_step", "export_step", "attach_metadata_step",
           "default_model_name", "model_meta", "read_model_meta", "write_model_meta",
           "run_tabular"]


def default_model_name(dataset: str, framework: str) -> str:
    """A DNS-1123 serving name derived from the data set and framework."""
    import re

    base = os.path.splitext(os.path.basename(dataset))[0] if os.sep in dataset or "." in dataset else dataset
    name = re.sub(r"[^a-z0-9-]+", "-", f"{base}-{framework}".lower()).strip("-")
    return name[:63].rstrip("-") or "model"


def load_data_step(*, dataset: str, target_column: str = "", task: str = "auto",
                   test_size: float = 0.25, seed: int = 42, nan_policy: str = "error",
                   train_path: str, test_path: str) -> dict[str, Any]:
    """Load, check, fingerprint and split; write both splits as Parquet.

    Returns:
        The metadata shared by both splits (plus ``rows`` of each under
        ``train_rows``/``test_rows``).
    """
    from kfp_interop.data import load_dataset, save_split, split_dataset, split_metadata

    data = load_dataset(dataset, target_column=target_column or None, task=task,
                        nan_policy=nan_policy)
    train, test = split_dataset(data, test_size=test_size, seed=seed)
    meta = split_metadata(data)
    meta.update(data_sha256=data.fingerprint(), train_rows=train.n_rows,
                test_rows=test.n_rows, seed=seed, nan_policy=nan_policy)
    save_split(train, train_path, meta)
    save_split(test, test_path, meta)
    return meta


def train_step(*, train_path: str, test_path: str, framework: str = "sklearn", estimator: str = "",
               hyperparameters: str = "{}", seed: int = 42, scaler: bool = False,
               model_dir: str) -> tuple[dict[str, Any], Any]:
    """Train and save the native model into ``model_dir``.

    Returns:
        ``(model_meta, train_result)``; ``model_meta`` carries everything later stages
        (export, metadata record) need about the model and its data.
    """
    from kfp_interop.data import load_split, read_split_metadata
    from kfp_interop.native import NativeModel, save_native
    from kfp_interop.train import train_model

    data_meta = read_split_metadata(train_path)
    train = load_split(train_path, data_meta)
    test = load_split(test_path)
    result = train_model(train, test, framework=framework, estimator=estimator,
                         hyperparameters=hyperparameters, seed=seed, scaler=scaler)
    saved = save_native(NativeModel(result.model, framework, result.task), model_dir)
    meta = model_meta(data_meta, framework=framework,
                      framework_version=result.framework_version, estimator=result.estimator,
                      task=result.task, hyperparameters=result.hyperparameters, seed=seed,
                      metrics=result.metrics, saved=saved)
    write_model_meta(model_dir, meta)
    return meta, result


def export_step(*, model_dir: str, test_path: str, opset: int = 17,
                tolerance: float = 1e-4, out_dir: str) -> dict[str, Any]:
    """Export to ONNX, run the parity gate, and only then write ``out_dir/model.onnx``.

    Returns:
        ``model_meta`` plus ``opset``, ``opsets``, ``parity`` and ``format: "onnx"``.

    Raises:
        ParityError: the gate failed (nothing is written).
    """
    from kfp_interop.data import load_split
    from kfp_interop.export import export_onnx, model_opsets, save_onnx
    from kfp_interop.native import load_native
    from kfp_interop.parity import check_parity, enforce_parity

    model_meta = read_model_meta(model_dir)
    native = load_native(model_dir, framework=model_meta["framework"],
                         task=model_meta["task"], expected_sha256=model_meta.get("native_sha256"))
    test = load_split(test_path)
    onnx_model = export_onnx(native, n_features=len(model_meta["feature_names"]), opset=opset)
    parity = enforce_parity(check_parity(native, onnx_model, test.X, tolerance=tolerance))
    os.makedirs(out_dir, exist_ok=True)
    save_onnx(onnx_model, os.path.join(out_dir, ONNX_FILENAME))
    meta = dict(model_meta)
    meta.update(format="onnx", file=ONNX_FILENAME, requested_opset=opset,
                opsets=model_opsets(onnx_model), parity=parity.to_dict())
    write_model_meta(out_dir, meta)
    return meta


def attach_metadata_step(*, model_dir: str, model_name: str = "", model_version: str = "1",
                         out_dir: str):
    """Build the record, embed it, and write ``out_dir/model.onnx`` plus its JSON sidecar
    ``out_dir/model.metadata.json``. An empty ``model_name`` derives one from the data set
    and framework.

    Returns:
        The :class:`~kfp_interop.metadata.InferenceMetadata` record.
    """
    from kfp_interop.metadata import build_record, read_onnx, save_metadata

    model_meta = read_model_meta(model_dir)
    if not model_meta.get("parity", {}).get("passed"):
        raise InvalidInputError("The model's parity gate did not pass (or did not run): "
                                "attach metadata only to a model that export_onnx approved.")
    model = read_onnx(os.path.join(model_dir, ONNX_FILENAME))
    model_name = model_name or default_model_name(model_meta["dataset"], model_meta["framework"])
    parity = {k: v for k, v in model_meta["parity"].items() if k != "task"}
    training = {k: model_meta[k] for k in ("dataset", "data_sha256", "rows", "train_rows",
                                           "test_rows", "seed", "hyperparameters", "metrics")}
    record = build_record(
        model, name=model_name, version=model_version, task=model_meta["task"],
        framework={"name": model_meta["framework"],
                   "version": model_meta["framework_version"],
                   "estimator": model_meta["estimator"]},
        feature_names=model_meta["feature_names"], class_labels=model_meta["class_labels"],
        target=model_meta["target_name"], training=training, parity=parity,
        lineage=model_meta.get("lineage"))
    os.makedirs(out_dir, exist_ok=True)
    save_metadata(record, model, os.path.join(out_dir, ONNX_FILENAME))
    return record


def run_tabular(out_dir: str, *, dataset: str = "iris", target_column: str = "",
                framework: str = "sklearn", estimator: str = "random_forest",
                hyperparameters: str = "{}", nan_policy: str = "error", seed: int = 42,
                opset: int = 17, tolerance: float = 1e-4, model_name: str = "",
                model_version: str = "1") -> dict[str, str]:
    """The tabular flow up to the attached model, without KFP (for notebooks, tests and
    benchmarks): the same stages the pipeline's components call.

    Returns:
        Paths: ``train``, ``test`` (Parquet), ``native`` (dir), ``model`` (dir with
        ``model.onnx`` and ``model.metadata.json``), plus ``data_meta`` as JSON text.
    """
    import json

    os.makedirs(out_dir, exist_ok=True)
    paths = {k: os.path.join(out_dir, v) for k, v in (
        ("train", "train.parquet"), ("test", "test.parquet"), ("native", "native"),
        ("exported", "exported"), ("model", "model"))}
    meta = load_data_step(dataset=dataset, target_column=target_column, seed=seed,
                          nan_policy=nan_policy, train_path=paths["train"],
                          test_path=paths["test"])
    train_step(train_path=paths["train"], test_path=paths["test"], framework=framework,
               estimator=estimator, hyperparameters=hyperparameters, seed=seed,
               model_dir=paths["native"])
    export_step(model_dir=paths["native"], test_path=paths["test"], opset=opset,
                tolerance=tolerance, out_dir=paths["exported"])
    attach_metadata_step(model_dir=paths["exported"], model_name=model_name,
                         model_version=model_version, out_dir=paths["model"])
    paths["data_meta"] = json.dumps(meta)
    return paths
