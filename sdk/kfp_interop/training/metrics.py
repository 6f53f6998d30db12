"""Standard held-out metrics, the same for every framework."""

from __future__ import annotations

from typing import Any

__all__ = ["compute_metrics", "score", "roc_points"]


def compute_metrics(task: str, y_true, y_pred, proba=None) -> tuple[dict[str, float], Any]:
    """Standard metrics.

    Classification: ``accuracy``, ``f1_macro``, ``roc_auc`` (binary, or one-vs-rest macro;
    only when probabilities are given and every class is present), plus the confusion
    matrix. Regression: ``r2``, ``rmse``, ``mae``.
    """
    import numpy as np
    from sklearn import metrics as m

    if task == "classification":
        out = {
            "accuracy": float(m.accuracy_score(y_true, y_pred)),
            "f1_macro": float(m.f1_score(y_true, y_pred, average="macro")),
        }
        if proba is not None and len(np.unique(y_true)) == proba.shape[1]:
            if proba.shape[1] == 2:
                out["roc_auc"] = float(m.roc_auc_score(y_true, proba[:, 1]))
            else:
                out["roc_auc"] = float(m.roc_auc_score(y_true, proba, multi_class="ovr",
                                                       average="macro"))
        n = proba.shape[1] if proba is not None else int(max(y_true.max(), y_pred.max()) + 1)
        cm = m.confusion_matrix(y_true, y_pred, labels=list(range(n))).tolist()
        return out, cm
    return {
        "r2": float(m.r2_score(y_true, y_pred)),
        "rmse": float(np.sqrt(m.mean_squared_error(y_true, y_pred))),
        "mae": float(m.mean_absolute_error(y_true, y_pred)),
    }, None


def score(native, test) -> tuple[dict[str, float], Any]:
    """Metrics and confusion matrix of a native model on a test split."""
    proba = native.predict_proba(test.X) if native.task == "classification" else None
    return compute_metrics(native.task, test.y, native.predict(test.X), proba)


def roc_points(native, test, *, max_points: int = 101) -> dict[str, list[float]] | None:
    """The ROC curve of a binary classifier on a test split, for KFP's ClassificationMetrics
    viewer: ``fpr``, ``tpr`` and ``thresholds`` (at most ``max_points``, first and last
    kept; the curve's opening threshold, infinity, is given as 1.0). ``None`` for other
    tasks, or when the test rows hold one class only."""
    import numpy as np
    from sklearn import metrics as m

    if native.task != "classification":
        return None
    proba = native.predict_proba(test.X)
    if proba.shape[1] != 2 or len(np.unique(test.y)) != 2:
        return None
    fpr, tpr, thresholds = m.roc_curve(test.y, proba[:, 1])
    if len(fpr) > max_points:
        keep = np.unique(np.linspace(0, len(fpr) - 1, max_points).round().astype(int))
        fpr, tpr, thresholds = fpr[keep], tpr[keep], thresholds[keep]
    thresholds = np.minimum(thresholds, 1.0)
    return {"fpr": [float(v) for v in fpr], "tpr": [float(v) for v in tpr],
            "thresholds": [float(v) for v in thresholds]}
