"""The ``deep`` stage: train a network classifier (any deep framework in the registry)
and save it with the same ``model_meta.json`` as tabular models, so the export and
metadata stages handle it unchanged."""

from __future__ import annotations

from typing import Any, Callable

from kfp_interop.constants import DEFAULT_SEED
from kfp_interop.errors import InvalidInputError
from kfp_interop.steps.model_dir import ModelMeta, write_model_meta
from kfp_interop.steps.stage import stage

__all__ = ["train_deep_step", "save_network"]


def save_network(native, data_meta: dict, *, model_dir: str, estimator: str,
                 hyperparameters: dict, seed: int, test, history: list,
                 extra: dict | None = None) -> tuple[ModelMeta, Any]:
    """Score a trained network on ``test``, save it and its ``model_meta.json``;
    returns ``(meta, confusion_matrix)``."""
    from kfp_interop.frameworks import get_framework, save_native
    from kfp_interop.training import roc_points, score

    metrics, cm = score(native, test)
    roc = roc_points(native, test)
    saved = save_native(native, model_dir)
    meta = ModelMeta.trained(data_meta, framework=native.framework,
                             framework_version=get_framework(native.framework).version(),
                             estimator=estimator, task="classification",
                             hyperparameters=hyperparameters, seed=seed, metrics=metrics,
                             saved=saved, history=history, roc_curve=roc, **(extra or {}))
    write_model_meta(model_dir, meta)
    return meta, cm


@stage("model_dir")
def train_deep_step(*, train_path: str, test_path: str, framework: str = "torch",
                    architecture: str = "mlp", init_args: str = "{}", epochs: int = 30,
                    batch_size: int = 32, lr: float = 1e-3, optimizer: str = "adam",
                    seed: int = DEFAULT_SEED, backend: str = "torch", model_dir: str,
                    on_epoch: Callable[[dict], None] | None = None) -> tuple[ModelMeta, Any]:
    """Train a PyTorch or Keras classifier; save it with its ``model_meta.json``.

    Returns:
        ``(meta, confusion_matrix)`` (:class:`ModelMeta`).
    """
    from kfp_interop.data import load_split, read_split_metadata
    from kfp_interop.training import fit_network, parse_hyperparameters

    args = parse_hyperparameters(init_args, what="init_args")
    data_meta = read_split_metadata(train_path)
    if data_meta.get("text_columns"):
        raise InvalidInputError(f"Text column(s) {data_meta['text_columns']} in "
                                f"{data_meta['source']!r}: the networks take numbers; use the "
                                "tabular pipeline (framework sklearn) or encode them first.")
    if data_meta["task"] != "classification":
        raise InvalidInputError("The deep-learning pipelines train classifiers; "
                                f"{data_meta['source']!r} is a {data_meta['task']} data set.")
    train, test = load_split(train_path, data_meta), load_split(test_path)
    native, history, estimator = fit_network(
        framework, architecture, train, test, init_args=args, epochs=epochs,
        batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed, backend=backend,
        on_epoch=on_epoch)
    hp = {"architecture": architecture, "init_args": args, "epochs": epochs,
          "batch_size": batch_size, "lr": lr, "optimizer": optimizer}
    return save_network(native, data_meta, model_dir=model_dir, estimator=estimator,
                        hyperparameters=hp, seed=seed, test=test, history=history)
