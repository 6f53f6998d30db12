"""Stages of the ``deep`` and ``transfer-learning`` pipelines, over files (as in
:mod:`kfp_interop.steps`): the model folders they write carry the same
``model_meta.json``, so ``export_step`` and ``attach_metadata_step`` handle them unchanged."""

from __future__ import annotations

from typing import Any

from kfp_interop.errors import DatasetError, InvalidInputError

__all__ = ["train_deep_step", "prepare_transfer_data_step", "finetune_step",
           "compare_transfer_step", "parse_classes", "split_rows_step", "warm_start_step"]

DEEP_FRAMEWORKS = ("torch", "keras")


def _version(framework: str) -> str:
    import importlib.metadata as md

    try:
        return md.version(framework)
    except md.PackageNotFoundError:
        return "unknown"


def _meta(data_meta: dict, *, framework: str, estimator: str, hyperparameters: dict,
          seed: int, metrics: dict, saved: dict, history: list, extra: dict | None = None
          ) -> dict[str, Any]:
    from kfp_interop.steps import model_meta

    return model_meta(data_meta, framework=framework, framework_version=_version(framework),
                      estimator=estimator, task="classification",
                      hyperparameters=hyperparameters, seed=seed, metrics=metrics,
                      saved=saved, history=history, **(extra or {}))


def _fit(framework: str, architecture: str, train, test, *, init_args: dict, epochs: int,
         batch_size: int, lr: float, optimizer: str, seed: int, backend: str,
         on_epoch=None, model=None, spec=None):
    from kfp_interop import deep

    n_features, n_classes = train.X.shape[1], len(train.class_labels)
    if framework == "torch":
        if model is None:
            spec = deep.TorchSpec(architecture, n_features, n_classes, init_args)
            model = deep.build_torch_model(spec)
        history = deep.train_torch(model, train.X, train.y, epochs=epochs,
                                   batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed,
                                   X_val=test.X, y_val=test.y, on_epoch=on_epoch)
        return model, spec, history, type(model).__name__
    if framework == "keras":
        if init_args:
            raise InvalidInputError("init_args apply to PyTorch models; Keras architectures "
                                    "take none.")
        if ":" in architecture:
            raise InvalidInputError("A 'module:Class' architecture is a PyTorch nn.Module; "
                                    "use framework='torch'.")
        model = deep.build_keras_model(architecture, n_features, n_classes, backend=backend,
                                       seed=seed)
        history = deep.train_keras(model, train.X, train.y, epochs=epochs,
                                   batch_size=batch_size, lr=lr, seed=seed, X_val=test.X,
                                   y_val=test.y, on_epoch=on_epoch)
        return model, None, history, f"keras.Sequential({architecture})"
    raise InvalidInputError(f"Unknown deep-learning framework {framework!r}; use one of "
                            f"{list(DEEP_FRAMEWORKS)}.")


def _score(native, test) -> dict[str, float]:
    from kfp_interop.train import compute_metrics

    proba = native.predict_proba(test.X)
    metrics, cm = compute_metrics("classification", test.y, proba.argmax(1), proba)
    return metrics, cm


def train_deep_step(*, train_path: str, test_path: str, framework: str = "torch",
                    architecture: str = "mlp", init_args: str = "{}", epochs: int = 30,
                    batch_size: int = 32, lr: float = 1e-3, optimizer: str = "adam",
                    seed: int = 42, backend: str = "torch", model_dir: str,
                    on_epoch=None) -> tuple[dict, Any]:
    """Train a PyTorch or Keras classifier; save it with its ``model_meta.json``.

    Returns:
        ``(model_meta, confusion_matrix)``.
    """
    from kfp_interop.data import load_split, read_split_metadata
    from kfp_interop.native import NativeModel, save_native
    from kfp_interop.steps import write_model_meta
    from kfp_interop.train import parse_hyperparameters

    args = parse_hyperparameters(init_args)
    data_meta = read_split_metadata(train_path)
    if data_meta["task"] != "classification":
        raise InvalidInputError("The deep-learning pipelines train classifiers; "
                                f"{data_meta['source']!r} is a {data_meta['task']} data set.")
    train, test = load_split(train_path, data_meta), load_split(test_path)
    model, spec, history, estimator = _fit(
        framework, architecture, train, test, init_args=args, epochs=epochs,
        batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed, backend=backend,
        on_epoch=on_epoch)
    native = NativeModel(model, framework, "classification", spec)
    metrics, cm = _score(native, test)
    saved = save_native(native, model_dir)
    hp = {"architecture": architecture, "init_args": args, "epochs": epochs,
          "batch_size": batch_size, "lr": lr, "optimizer": optimizer}
    meta = _meta(data_meta, framework=framework, estimator=estimator, hyperparameters=hp,
                 seed=seed, metrics=metrics, saved=saved, history=history)
    write_model_meta(model_dir, meta)
    return meta, cm


def parse_classes(text: str) -> list[int]:
    try:
        classes = [int(c) for c in str(text).replace(" ", "").split(",") if c != ""]
    except ValueError:
        raise InvalidInputError(f"Classes {text!r} must be comma-separated integers, "
                                "e.g. '0,1,2,3,4'.") from None
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise InvalidInputError(f"Classes {text!r} must name at least two distinct classes.")
    return classes


def prepare_transfer_data_step(*, dataset: str = "digits", source_classes: str = "0,1,2,3,4",
                               target_classes: str = "5,6,7,8,9", k: int = 10,
                               test_size: float = 0.25, seed: int = 42, source_train: str,
                               source_test: str, target_train: str, target_test: str) -> dict:
    """Split a data set into a source task and a k-shot target task (disjoint classes).

    Raises:
        InvalidInputError: overlapping or unknown classes, k < 1.
        DatasetError: k larger than the target samples available per class.
    """
    import numpy as np

    from kfp_interop.data import load_dataset, save_split, split_dataset, split_metadata

    data = load_dataset(dataset)
    if data.task != "classification":
        raise InvalidInputError(f"{dataset!r} is not a classification data set.")
    src, tgt = parse_classes(source_classes), parse_classes(target_classes)
    labels = [int(c) if str(c).isdigit() else c for c in data.class_labels]
    known = set(range(len(data.class_labels)))
    if set(src) & set(tgt):
        raise InvalidInputError(f"Source classes {src} and target classes {tgt} overlap.")
    if not set(src + tgt) <= known:
        raise InvalidInputError(f"Classes {sorted(set(src + tgt) - known)} are not in "
                                f"{dataset!r} (it has 0..{len(known) - 1}).")
    if k < 1:
        raise InvalidInputError(f"k={k} must be at least 1 sample per class.")

    def subset(classes):
        mask = np.isin(data.y, classes)
        remap = {c: i for i, c in enumerate(classes)}
        import dataclasses

        return dataclasses.replace(
            data, X=data.X[mask], y=np.array([remap[v] for v in data.y[mask]], dtype=np.int64),
            class_labels=[str(labels[c]) for c in classes])

    source, target = subset(src), subset(tgt)
    s_train, s_test = split_dataset(source, test_size=test_size, seed=seed)
    t_pool, t_test = split_dataset(target, test_size=test_size, seed=seed)
    counts = np.bincount(t_pool.y, minlength=len(tgt))
    if k > counts.min():
        raise DatasetError(
            f"k={k} is larger than the target training samples of class "
            f"{target.class_labels[int(counts.argmin())]!r} ({int(counts.min())}); use "
            f"k <= {int(counts.min())}.")
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(t_pool.y == c), k, replace=False)
                          for c in range(len(tgt))])
    idx.sort()
    import dataclasses

    t_train = dataclasses.replace(t_pool, X=t_pool.X[idx], y=t_pool.y[idx])
    fp = data.fingerprint()
    out = {}
    for part, split, path, base in (("source", s_train, source_train, source),
                                    ("source", s_test, source_test, source),
                                    ("target", t_train, target_train, target),
                                    ("target", t_test, target_test, target)):
        meta = split_metadata(base)
        meta.update(data_sha256=fp, seed=seed, part=part,
                    train_rows=(s_train if part == "source" else t_train).n_rows,
                    test_rows=(s_test if part == "source" else t_test).n_rows,
                    classes=src if part == "source" else tgt, k=k)
        save_split(split, path, meta)
        out[part] = meta
    return out


def finetune_step(*, base_model_dir: str, train_path: str, test_path: str,
                  epochs: int = 30, unfreeze_epochs: int = 0, batch_size: int = 16,
                  lr: float = 1e-3, unfreeze_lr: float = 1e-4, seed: int = 42,
                  model_dir: str, on_epoch=None) -> tuple[dict, Any]:
    """Fine-tune a pretrained PyTorch model on a new task: a new head, the backbone frozen,
    then optionally everything unfrozen for ``unfreeze_epochs`` at ``unfreeze_lr``.

    Raises:
        ModelFileError: the checkpoint does not fit its architecture.
        InvalidInputError: the base model is not a PyTorch model with a ``backbone``.
    """
    import torch

    from kfp_interop import deep
    from kfp_interop.data import load_split, read_split_metadata
    from kfp_interop.native import NativeModel, save_native
    from kfp_interop.steps import write_model_meta, read_model_meta

    base_meta = read_model_meta(base_model_dir)
    if base_meta["framework"] != "torch":
        raise InvalidInputError(f"Fine-tuning takes a PyTorch base model; this one is "
                                f"{base_meta['framework']!r}.")
    model, spec = deep.load_torch(base_model_dir)
    if not hasattr(model, "backbone") or not hasattr(model, "head"):
        raise InvalidInputError(f"{spec.architecture!r} has no 'backbone' and 'head' "
                                "submodules to freeze and replace.")
    data_meta = read_split_metadata(train_path)
    train, test = load_split(train_path, data_meta), load_split(test_path)
    if train.X.shape[1] != spec.n_features:
        raise InvalidInputError(f"The base model takes {spec.n_features} features; the target "
                                f"data has {train.X.shape[1]}.")
    n_classes = len(train.class_labels)
    torch.manual_seed(seed)
    model.head = torch.nn.Linear(model.head.in_features, n_classes)
    deep.freeze_prefixes(model, ["backbone."], frozen=True)
    history = deep.train_torch(model, train.X, train.y, epochs=epochs, batch_size=batch_size,
                               lr=lr, seed=seed, X_val=test.X, y_val=test.y,
                               on_epoch=on_epoch)
    if unfreeze_epochs:
        deep.freeze_prefixes(model, ["backbone."], frozen=False)
        more = deep.train_torch(model, train.X, train.y, epochs=unfreeze_epochs,
                                batch_size=batch_size, lr=unfreeze_lr, seed=seed + 1,
                                X_val=test.X, y_val=test.y, on_epoch=on_epoch)
        history += [{**row, "epoch": row["epoch"] + epochs, "unfrozen": True} for row in more]
    new_spec = deep.TorchSpec(spec.architecture, spec.n_features, n_classes, spec.init_args)
    native = NativeModel(model, "torch", "classification", new_spec)
    metrics, cm = _score(native, test)
    saved = save_native(native, model_dir)
    hp = {"architecture": spec.architecture, "init_args": spec.init_args, "epochs": epochs,
          "unfreeze_epochs": unfreeze_epochs, "batch_size": batch_size, "lr": lr,
          "unfreeze_lr": unfreeze_lr, "frozen": ["backbone"], "k": data_meta.get("k")}
    lineage = {"method": "fine-tune", "base_model_sha256": base_meta["native_sha256"],
               "base_framework": "torch", "source_task": {
                   "dataset": base_meta["dataset"], "classes": base_meta["class_labels"],
                   "data_sha256": base_meta["data_sha256"],
                   "accuracy": base_meta["metrics"].get("accuracy")}}
    meta = _meta(data_meta, framework="torch", estimator=type(model).__name__,
                 hyperparameters=hp, seed=seed, metrics=metrics, saved=saved,
                 history=history, extra={"lineage": lineage})
    write_model_meta(model_dir, meta)
    return meta, cm


def compare_transfer_step(*, finetuned_dir: str, scratch_dir: str) -> dict[str, float]:
    """Target accuracy with transfer vs from scratch, on the same target test rows."""
    from kfp_interop.steps import read_model_meta

    ft, sc = read_model_meta(finetuned_dir), read_model_meta(scratch_dir)
    if ft["data_sha256"] != sc["data_sha256"] or ft["test_rows"] != sc["test_rows"]:
        raise InvalidInputError("The fine-tuned and scratch models were scored on different "
                                "data; compare them on the same target split.")
    out = {"target_accuracy": ft["metrics"]["accuracy"],
           "scratch_accuracy": sc["metrics"]["accuracy"],
           "transfer_gain": ft["metrics"]["accuracy"] - sc["metrics"]["accuracy"],
           "target_f1_macro": ft["metrics"]["f1_macro"],
           "scratch_f1_macro": sc["metrics"]["f1_macro"]}
    if ft["hyperparameters"].get("k"):  # k-shot transfer (not a warm start)
        out["k"] = float(ft["hyperparameters"]["k"])
    return out




def split_rows_step(*, data_path: str, fraction: float = 0.5, seed: int = 42,
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


def warm_start_step(*, base_model_dir: str, train_path: str, test_path: str,
                    n_estimators: int = 50, model_dir: str) -> tuple[dict, Any]:
    """Continue an XGBoost model on new rows (``xgb_model=`` the base booster): the
    tabular counterpart of fine-tuning. The result has the base trees plus
    ``n_estimators`` new ones, and its lineage names the base model.

    Raises:
        InvalidInputError: the base is not XGBoost, or its features/classes differ.
    """
    import xgboost

    from kfp_interop.data import load_split, read_split_metadata
    from kfp_interop.native import NativeModel, load_native, save_native
    from kfp_interop.steps import model_meta, read_model_meta, write_model_meta
    from kfp_interop.train import compute_metrics

    base_meta = read_model_meta(base_model_dir)
    if base_meta["framework"] != "xgboost":
        raise InvalidInputError(f"Warm start continues an XGBoost model; the base is "
                                f"{base_meta['framework']!r}.")
    data_meta = read_split_metadata(train_path)
    if (data_meta["feature_names"] != base_meta["feature_names"]
            or data_meta.get("class_labels") != base_meta["class_labels"]):
        raise InvalidInputError("The new data's features or classes differ from the base "
                                "model's: a warm start needs the same schema.")
    if n_estimators < 1:
        raise InvalidInputError(f"n_estimators={n_estimators} must be at least 1.")
    base = load_native(base_model_dir, framework="xgboost", task=base_meta["task"],
                       expected_sha256=base_meta["native_sha256"])
    train, test = load_split(train_path, data_meta), load_split(test_path)
    params = {**base.model.get_params(), "n_estimators": n_estimators}
    cls = xgboost.XGBClassifier if base_meta["task"] == "classification" else \
        xgboost.XGBRegressor
    model = cls(**params)
    model.fit(train.X, train.y, xgb_model=base.model.get_booster())
    native = NativeModel(model, "xgboost", base_meta["task"])
    proba = native.predict_proba(test.X) if base_meta["task"] == "classification" else None
    metrics, cm = compute_metrics(base_meta["task"], test.y, native.predict(test.X), proba)
    saved = save_native(native, model_dir)
    lineage = {"method": "warm-start", "base_model_sha256": base_meta["native_sha256"],
               "base_framework": "xgboost", "source_task": {
                   "dataset": base_meta["dataset"], "data_sha256": base_meta["data_sha256"],
                   "train_rows": base_meta["train_rows"],
                   "trees": base.model.get_booster().num_boosted_rounds()}}
    meta = model_meta(data_meta, framework="xgboost",
                      framework_version=base_meta["framework_version"],
                      estimator=type(model).__name__, task=base_meta["task"],
                      hyperparameters={**base_meta["hyperparameters"],
                                       "warm_start_estimators": n_estimators},
                      seed=base_meta["seed"], metrics=metrics, saved=saved, lineage=lineage)
    write_model_meta(model_dir, meta)
    return meta, cm
