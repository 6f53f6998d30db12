"""warm_start: continue an XGBoost model on new rows."""

from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from kfp_interop.components._common import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def warm_start(
    base_model: Input[Model],
    train_data: Input[Dataset],
    test_data: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    n_estimators: int = 50,
) -> str:
    """Add `n_estimators` boosting rounds on `train_data` to the base booster; the
    model's lineage (base sha256, base data) goes into the record.

    Args:
        n_estimators: boosting rounds added to the base booster's.
    """
    from kfp_interop.steps import warm_start_step
    from kfp_interop.steps.artifacts import log_training

    meta, cm = warm_start_step(base_model_dir=base_model.path, train_path=train_data.path,
                               test_path=test_data.path, n_estimators=n_estimators,
                               model_dir=model.path)
    log_training(model, metrics, classification_metrics, meta, cm)
    return meta.native_sha256
