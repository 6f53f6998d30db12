"""Writing results onto KFP output artifacts, shared by the components. Plain duck
typing over the artifact objects KFP passes in (``metadata``, ``log_metric``,
``log_confusion_matrix``): this module does not import kfp."""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["log_metrics", "log_training", "epoch_logger"]


def log_metrics(metrics: Any, values: dict[str, Any]) -> None:
    """``metrics.log_metric`` for every number in ``values`` (bools as 0/1; text and
    ``None`` are not metrics and are left out)."""
    for key, value in values.items():
        if isinstance(value, bool):
            metrics.log_metric(key, float(value))
        elif isinstance(value, (int, float)):
            metrics.log_metric(key, value)


def log_training(model: Any, metrics: Any, classification_metrics: Any,
                 meta: Any, confusion_matrix: list | None) -> None:
    """What every training component records: the model's metadata (a
    :class:`~kfp_interop.steps.model_dir.ModelMeta`), its held-out metrics, and
    (classifiers) the confusion matrix with the class names and, for two classes, the
    ROC curve, which the Kubeflow UI draws."""
    model.metadata.update(meta.artifact_metadata())
    log_metrics(metrics, meta.metrics)
    if confusion_matrix is not None:
        classification_metrics.log_confusion_matrix(meta.class_labels, confusion_matrix)
    roc = meta.roc_curve
    if roc:
        classification_metrics.log_roc_curve(roc["fpr"], roc["tpr"], roc["thresholds"])


def epoch_logger(metrics: Any, keys: tuple[str, ...] = ("loss", "accuracy", "val_accuracy")
                 ) -> Callable[[dict], None]:
    """An ``on_epoch`` callback logging ``epoch_NNN_<key>`` metrics."""

    def log(row: dict) -> None:
        for key in keys:
            if key in row:
                metrics.log_metric(f"epoch_{row['epoch']:03d}_{key}", row[key])

    return log
