"""The transfer-learning stages: split one data set into a source task and a k-shot
target task, fine-tune a pretrained PyTorch backbone on the target, and compare with
training from scratch on the same rows."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

from kfp_interop.constants import DEFAULT_SEED, DEFAULT_TEST_SIZE
from kfp_interop.errors import DatasetError, InvalidInputError
from kfp_interop.files import atomic_write_json
from kfp_interop.steps.deep import save_network
from kfp_interop.steps.model_dir import ModelMeta, read_model_meta, write_model_meta
from kfp_interop.steps.stage import stage

__all__ = ["parse_classes", "prepare_transfer_data_step", "finetune_step",
           "compare_transfer_step", "shift_features", "SHIFTS", "import_backbone_step"]


def parse_classes(text: str) -> list[int]:
    try:
        classes = [int(c) for c in str(text).replace(" ", "").split(",") if c != ""]
    except ValueError:
        raise InvalidInputError(f"Classes {text!r} must be comma-separated integers, "
                                "e.g. '0,1,2,3,4'.") from None
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise InvalidInputError(f"Classes {text!r} must name at least two distinct classes.")
    return classes


#: shifts of the target task that keep shapes and labels (a new scanner or sensor)
SHIFTS = ("none", "noise", "blur", "contrast")


def shift_features(X, kind: str, strength: float, *, seed: int):
    """The target's inputs under a shift that keeps shapes and labels, relative to the
    data's value range (0..16 for the digits): ``noise`` adds Gaussian noise of std
    ``strength`` x range (clipped to the range); ``blur`` mixes each pixel with its
    3x3 neighbourhood (square images), weight ``strength``; ``contrast`` pulls values
    towards the image mean by ``strength``.

    Raises:
        InvalidInputError: an unknown shift, a strength outside [0, 1], blur on inputs
            that are not square images.
    """
    import numpy as np

    if kind not in SHIFTS:
        raise InvalidInputError(f"Unknown target_shift {kind!r}; use one of {list(SHIFTS)}.")
    if not 0.0 <= strength <= 1.0:
        raise InvalidInputError(f"shift_strength={strength!r} must be between 0 and 1.")
    X = np.asarray(X, dtype=np.float64)
    if kind == "none" or strength == 0:
        return X
    top = float(X.max()) or 1.0
    if kind == "noise":
        noisy = X + np.random.default_rng(seed).normal(0.0, strength * top, X.shape)
        return np.clip(noisy, 0.0, top)
    if kind == "contrast":
        mean = X.mean(axis=1, keepdims=True)
        return X + strength * (mean - X)
    side = int(round(X.shape[1] ** 0.5))
    if side * side != X.shape[1]:
        raise InvalidInputError(f"target_shift='blur' needs square images; {X.shape[1]} "
                                "features is not a square.")
    img = X.reshape(-1, side, side)
    padded = np.pad(img, ((0, 0), (1, 1), (1, 1)), mode="edge")
    neighbours = sum(padded[:, i:i + side, j:j + side] for i in range(3) for j in range(3)) / 9
    return ((1 - strength) * img + strength * neighbours).reshape(len(X), -1)


def _classes(text: str, n: int) -> list[int]:
    return list(range(n)) if str(text).strip().lower() == "all" else parse_classes(text)


@stage("source_train")
def prepare_transfer_data_step(*, dataset: str = "digits", source_classes: str = "all",
                               target_classes: str = "all", k: int = 10,
                               target_shift: str = "noise", shift_strength: float = 0.3,
                               test_size: float = DEFAULT_TEST_SIZE, seed: int = DEFAULT_SEED,
                               source_train: str,
                               source_test: str, target_train: str, target_test: str) -> dict:
    """Split a data set into a source task and a k-shot target task.

    Two kinds of target: the same classes as the source under a shift that keeps shapes
    and labels (``source_classes`` = ``target_classes``, e.g. both ``all``: the rows are
    split into two stratified halves, the target half shifted by ``target_shift``), or
    other classes (disjoint ``source_classes`` and ``target_classes``, optionally
    shifted too). The target's training rows are ``k`` per class; its test rows are all
    the rest of its half.

    Raises:
        InvalidInputError: classes that overlap without being equal, unknown classes,
            k < 1, an unknown shift.
        DatasetError: k larger than the target samples available per class.
    """
    import numpy as np

    from kfp_interop.data import load_dataset, save_split, split_dataset, split_metadata

    data = load_dataset(dataset)
    if data.task != "classification":
        raise InvalidInputError(f"{dataset!r} is not a classification data set.")
    n = len(data.class_labels)
    src, tgt = _classes(source_classes, n), _classes(target_classes, n)
    labels = [int(c) if str(c).isdigit() else c for c in data.class_labels]
    known = set(range(n))
    same = sorted(src) == sorted(tgt)
    if set(src) & set(tgt) and not same:
        raise InvalidInputError(f"Source classes {src} and target classes {tgt} overlap: give "
                                "the same classes (a shifted target) or disjoint ones.")
    if not set(src + tgt) <= known:
        raise InvalidInputError(f"Classes {sorted(set(src + tgt) - known)} are not in "
                                f"{dataset!r} (it has 0..{n - 1}).")
    if k < 1:
        raise InvalidInputError(f"k={k} must be at least 1 sample per class.")
    shift_features(data.X[:1], target_shift, shift_strength, seed=seed)  # check early

    def subset(base, classes):
        mask = np.isin(base.y, classes)
        remap = {c: i for i, c in enumerate(classes)}
        return dataclasses.replace(
            base, X=base.X[mask], y=np.array([remap[v] for v in base.y[mask]], dtype=np.int64),
            class_labels=[str(labels[c]) for c in classes])

    if same:  # one half is the source, the other (shifted) the target
        half_a, half_b = split_dataset(data, test_size=0.5, seed=seed)
        source, target = subset(half_a, src), subset(half_b, tgt)
    else:
        source, target = subset(data, src), subset(data, tgt)
    target = dataclasses.replace(target, X=shift_features(target.X, target_shift,
                                                          shift_strength, seed=seed))
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
                    classes=src if part == "source" else tgt, k=k,
                    shift={"kind": target_shift, "strength": shift_strength}
                    if part == "target" else {"kind": "none"})
        save_split(split, path, meta)
        out[part] = meta
    return out


@stage("model_dir")
def finetune_step(*, base_model_dir: str, train_path: str, test_path: str,
                  epochs: int = 30, unfreeze_epochs: int = 0, batch_size: int = 16,
                  lr: float = 1e-3, unfreeze_lr: float = 1e-4, seed: int = DEFAULT_SEED,
                  model_dir: str, on_epoch: Callable[[dict], None] | None = None
                  ) -> tuple[ModelMeta, Any]:
    """Fine-tune a pretrained network (any framework with the ``finetune`` capability:
    PyTorch and Keras among the built-in ones) on a target task. New classes: a new head
    on the frozen backbone, then optionally everything unfrozen for ``unfreeze_epochs``
    at ``unfreeze_lr``. The base model's own classes (a shifted target): the head is
    kept and every layer trains for ``epochs`` at ``lr``.

    Raises:
        ModelFileError: the checkpoint does not fit its architecture.
        UnsupportedOperationError: the base's framework cannot fine-tune (the message
            lists those that can).
        InvalidInputError: the base has no head to replace, or takes other features.
    """
    from kfp_interop.data import load_split, read_split_metadata
    from kfp_interop.frameworks import load_native, require_capability

    base_meta = read_model_meta(base_model_dir)
    fw = require_capability(base_meta.framework, "finetune", "Fine-tuning")
    base = load_native(base_model_dir, framework=fw.name, task="classification",
                       expected_sha256=base_meta.native_sha256)
    data_meta = read_split_metadata(train_path)
    train, test = load_split(train_path, data_meta), load_split(test_path)
    n_in = fw.n_inputs(base)
    if train.X.shape[1] != n_in:
        raise InvalidInputError(f"The base model takes {n_in} features; the target data has "
                                f"{train.X.shape[1]}.")
    n_classes = len(train.class_labels)
    # the same classes (a shifted target): the head already knows them, every layer
    # adapts; new classes: a new head on the frozen backbone, then optionally all layers
    same_task = list(base_meta.class_labels or []) == list(train.class_labels)
    model = base.model if same_task else fw.finetune_head(base, n_classes, seed=seed)
    settings = dict(epochs=epochs, batch_size=batch_size, X_val=test.X, y_val=test.y,
                    on_epoch=on_epoch)
    history = fw.train(model, train.X, train.y, lr=lr, seed=seed, **settings)
    if unfreeze_epochs and not same_task:
        fw.unfreeze(model)
        more = fw.train(model, train.X, train.y, **{**settings, "epochs": unfreeze_epochs},
                        lr=unfreeze_lr, seed=seed + 1)
        history = _then_unfrozen(history, more)
    native = fw.finetuned(base, model, n_classes)
    hp = _hyperparameters(
        fw.finetune_settings(base, base_meta.estimator), same_task, data_meta, epochs=epochs,
        unfreeze_epochs=unfreeze_epochs, batch_size=batch_size, lr=lr,
        unfreeze_lr=unfreeze_lr)
    return save_network(native, data_meta, model_dir=model_dir,
                        estimator=fw.estimator_of(model),
                        hyperparameters=hp, seed=seed, test=test, history=history,
                        extra={"lineage": _lineage(base_meta)})


def _hyperparameters(model: dict, same_task: bool, data_meta: dict, **settings) -> dict:
    """What a fine-tuned model's record says of its training, either framework."""
    return {**model, **settings, "frozen": [] if same_task else ["backbone"],
            "head": "kept" if same_task else "new", "k": data_meta.get("k"),
            "shift": data_meta.get("shift")}


def _then_unfrozen(history: list[dict], more: list[dict]) -> list[dict]:
    """The frozen phase's epochs, then the unfrozen phase's numbered after them."""
    done = history[-1]["epoch"] if history else 0
    return history + [{**row, "epoch": row["epoch"] + done, "unfrozen": True} for row in more]


def _lineage(base_meta: ModelMeta) -> dict:
    source = {"dataset": base_meta.dataset, "classes": base_meta.class_labels,
              "data_sha256": base_meta.data_sha256,
              "accuracy": base_meta.metrics.get("accuracy")}
    return {"method": "fine-tune", "base_model_sha256": base_meta.native_sha256,
            "base_framework": base_meta.framework,
            "source_task": {k: v for k, v in source.items() if v is not None}}


@stage("model_dir")
def import_backbone_step(*, model_path: str, train_path: str, architecture: str = "",
                         init_args: str = "{}", model_dir: str) -> ModelMeta:
    """A pretrained model you bring, as the base model fine-tuning starts from:

    - a PyTorch state dict with the ``module:Class`` (and constructor arguments) it
      belongs to, whose module has ``backbone`` and ``head`` submodules (as the built-in
      ``mlp`` and ``cnn`` have); read with ``weights_only``, the class from an allowed
      module;
    - a Keras 3 ``.keras`` file (loaded in safe mode): one input of the target's
      features, its last layer a ``Dense`` softmax head.

    The framework is the one with the ``finetune`` capability that reads the file (by
    its content: a copy may have lost its name; see ``frameworks.backbone_framework``). The file is copied as it is, so its
    sha256 becomes the fine-tuned model's lineage.

    Raises:
        ModelFileError: not a state dict or a Keras file, or it does not load into the
            class.
        UnsupportedModelError: a ``torch.export`` program (its graph is fixed: there is
            no backbone or head to address by name).
        InvalidInputError: a class without ``backbone`` and ``head``; a Keras model that
            does not take the target's features; an architecture given with a Keras file.
    """
    from kfp_interop.data import read_split_metadata
    from kfp_interop.files import sha256_file
    from kfp_interop.frameworks import backbone_framework, with_capability
    from kfp_interop.training import parse_hyperparameters

    path = model_path
    if os.path.isdir(path):
        found = [f for f in sorted(os.listdir(path))
                 if os.path.isfile(os.path.join(path, f))
                 and backbone_framework(os.path.join(path, f))]
        if len(found) != 1:
            raise InvalidInputError(f"{model_path!r} holds {found or 'no model file'}; give "
                                    "one pretrained model file (e.g. a PyTorch state dict "
                                    "or a Keras .keras file).")
        path = os.path.join(path, found[0])
    fw = backbone_framework(path)
    if fw is None:
        raise InvalidInputError(
            f"{os.path.basename(path)!r} is not a pretrained model any framework that "
            f"fine-tunes reads ({', '.join(with_capability('finetune'))}); give a PyTorch "
            "state dict or a Keras .keras file.")
    data_meta = read_split_metadata(train_path)
    foreign = fw.import_backbone(path, n_features=len(data_meta["feature_names"]),
                                 architecture=architecture,
                                 init_args=parse_hyperparameters(init_args, what="init_args"))
    meta = ModelMeta(
        framework=fw.name, task="classification", estimator=foreign.estimator,
        feature_names=list(data_meta["feature_names"]),
        class_labels=None,  # its head's classes are not the target's: a new head
        dataset=os.path.basename(path), native_format=fw.native_format,
        native_file=fw.native_file, native_sha256=sha256_file(path),
        origin={"kind": "imported", "source": os.path.basename(path)})
    # nothing is written before the file has loaded; then the file itself (it loaded
    # as data), so its sha256 is yours
    os.makedirs(model_dir, exist_ok=True)
    fw.keep_backbone(path, foreign, model_dir)
    write_model_meta(model_dir, meta)
    return meta


@stage("report_path")
def compare_transfer_step(*, finetuned_dir: str, scratch_dir: str,
                          report_path: str | None = None) -> dict[str, float]:
    """Target accuracy with transfer vs from scratch, on the same target test rows
    (also written as JSON to ``report_path``)."""
    ft, sc = read_model_meta(finetuned_dir), read_model_meta(scratch_dir)
    if ft.data_sha256 != sc.data_sha256 or ft.test_rows != sc.test_rows:
        raise InvalidInputError("The fine-tuned and scratch models were scored on different "
                                "data; compare them on the same target split.")
    out = {"target_accuracy": ft.metrics["accuracy"],
           "scratch_accuracy": sc.metrics["accuracy"],
           "transfer_gain": ft.metrics["accuracy"] - sc.metrics["accuracy"],
           "target_f1_macro": ft.metrics["f1_macro"],
           "scratch_f1_macro": sc.metrics["f1_macro"]}
    k = (ft.hyperparameters or {}).get("k")
    if k:  # k-shot transfer (not a warm start)
        out["k"] = float(k)
    if report_path:
        atomic_write_json(report_path, out)
    return out
