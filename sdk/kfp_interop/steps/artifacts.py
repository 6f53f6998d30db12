"""Writing results onto KFP output artifacts, shared by the components. Plain duck
typing over the artifact objects KFP passes in (``metadata``, ``log_metric``,
``log_confusion_matrix``): this module does not import kfp."""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["log_metrics", "log_training", "epoch_logger", "log_optimization"]


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


def log_optimization(optimized: Any, gate: Any, model_card_path: str, record: Any,
                     report: dict | None, *, source_metadata: dict) -> None:
    """The optimize component's outputs: the model's metadata (the record's, or the
    incoming model's when nothing was optimized), the accuracy gate's numbers as metrics
    (``optimized`` 0 or 1, accuracy or agreement before and after, the drop and its
    budget, the size ratio, latency at 1 and 64 rows before and after) and a model card."""
    from kfp_interop.files import atomic_write

    if record is None:
        optimized.metadata.update(source_metadata)
        gate.log_metric("optimized", 0.0)
        atomic_write(model_card_path, "# Not optimized\n\nThe pipeline's `optimize` "
                     "parameter was `none`: the exported model passed through unchanged.\n")
        return
    from kfp_interop.metadata.render import to_kfp_metadata, to_model_card

    optimized.metadata.update(to_kfp_metadata(record))
    accuracy = report["accuracy"]
    latency = report["latency_ms"]
    log_metrics(gate, {
        "optimized": 1.0, f"{accuracy['metric']}_before": accuracy.get("before"),
        f"{accuracy['metric']}_after": accuracy["after"], "accuracy_drop": accuracy["drop"],
        "max_accuracy_drop": accuracy["max_drop"],
        "size_ratio": report["size_bytes"]["before"] / max(1, report["size_bytes"]["after"]),
        **{f"latency_ms_{rows}_{when}": latency[when][rows]
           for when in ("before", "after") for rows in ("rows_1", "rows_64")}})
    atomic_write(model_card_path, to_model_card(record))
