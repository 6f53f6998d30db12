"""The warm-start stages, the tabular variant of transfer learning: split one split's
rows in two (older and newer data), and continue a model on the newer rows (any
framework with the ``warm_start`` capability: XGBoost among the built-in ones)."""

from __future__ import annotations

from typing import Any

from kfp_interop.constants import DEFAULT_SEED
from kfp_interop.errors import InvalidInputError
from kfp_interop.steps.model_dir import ModelMeta, read_model_meta, write_model_meta
from kfp_interop.steps.stage import stage

__all__ = ["split_rows_step", "warm_start_step"]


@stage("first_path")
def split_rows_step(*, data_path: str, fraction: float = 0.5, seed: int = DEFAULT_SEED,
                    first_path: str, second_path: str) -> tuple[dict, dict]:
    """Split one split's rows in two (stratified, seeded): e.g. the data a model was first
    trained on, and the newer data it is later continued on."""
    from kfp_interop.data import load_split, read_split_metadata, save_split, split_dataset

    meta = read_split_metadata(data_path)
    data = load_split(data_path, meta)
    first, second = split_dataset(data, test_size=1 - fraction, seed=seed)
    out = []
    for part, path in ((first, first_path), (second, second_path)):
        m = {**meta, "train_rows": part.n_rows}
        save_split(part, path, m)
        out.append(m)
    return out[0], out[1]


@stage("model_dir")
def warm_start_step(*, base_model_dir: str, train_path: str, test_path: str,
                    n_estimators: int = 50, model_dir: str) -> tuple[ModelMeta, Any]:
    """Continue a boosted model on new rows (its framework's ``warm_start``: XGBoost's
    ``xgb_model=`` the base booster): the tabular counterpart of fine-tuning. The result
    has the base trees plus ``n_estimators`` new ones, and its lineage names the base
    model.

    Raises:
        UnsupportedOperationError: the base's framework cannot warm-start (the message lists
            those that can).
        InvalidInputError: its features/classes differ from the new data's.
    """
    from kfp_interop.data import load_split, read_split_metadata
    from kfp_interop.frameworks import NativeModel, load_native, require_capability, save_native
    from kfp_interop.training import roc_points, score

    base_meta = read_model_meta(base_model_dir)
    fw = require_capability(base_meta.framework, "warm_start",
                            "A warm start (continuing a model on new rows)")
    data_meta = read_split_metadata(train_path)
    if (data_meta["feature_names"] != base_meta.feature_names
            or data_meta.get("class_labels") != base_meta.class_labels):
        raise InvalidInputError("The new data's features or classes differ from the base "
                                "model's: a warm start needs the same schema.")
    if n_estimators < 1:
        raise InvalidInputError(f"n_estimators={n_estimators} must be at least 1.")
    task = base_meta.task
    base = load_native(base_model_dir, framework=fw.name, task=task,
                       expected_sha256=base_meta.native_sha256)
    train, test = load_split(train_path, data_meta), load_split(test_path)
    model = fw.warm_start(base.model, train.X, train.y, task=task, n_estimators=n_estimators)
    native = NativeModel(model, fw.name, task)
    metrics, cm = score(native, test)
    roc = roc_points(native, test)
    saved = save_native(native, model_dir)
    lineage = {"method": "warm-start", "base_model_sha256": base_meta.native_sha256,
               "base_framework": fw.name, "source_task": {
                   "dataset": base_meta.dataset, "data_sha256": base_meta.data_sha256,
                   "train_rows": base_meta.train_rows, **fw.base_summary(base.model)}}
    meta = ModelMeta.trained(
        data_meta, framework=fw.name,
        framework_version=base_meta.framework_version or fw.version(),
        estimator=type(model).__name__, task=task,
        hyperparameters={**(base_meta.hyperparameters or {}),
                         "warm_start_estimators": n_estimators},
        seed=base_meta.seed, metrics=metrics,
        saved=saved, lineage=lineage, roc_curve=roc)
    write_model_meta(model_dir, meta)
    return meta, cm
