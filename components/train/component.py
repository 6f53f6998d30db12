"""train: fit a scikit-learn, XGBoost or LightGBM model; log metrics."""

from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from kfp_interop.components._image import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def train(
    train_data: Input[Dataset],
    test_data: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    framework: str = "sklearn",
    estimator: str = "random_forest",
    hyperparameters: str = "{}",
    seed: int = 42,
    scaler: bool = False,
):
    """Train on train_data, score on test_data, save the model in its native safe format.

    Args:
        framework: sklearn, xgboost or lightgbm.
        estimator: random_forest, gradient_boosting, logistic_regression,
            linear_regression, a scikit-learn 'module:Class', or (xgboost/lightgbm)
            the framework's own name.
        hyperparameters: a JSON object passed to the estimator.
        seed: random_state for the estimator.
        scaler: put a StandardScaler in front (scikit-learn only).
    """
    from kfp_interop.steps import train_step

    meta, result = train_step(train_path=train_data.path, test_path=test_data.path,
                              framework=framework,
                              estimator=estimator, hyperparameters=hyperparameters,
                              seed=seed, scaler=scaler, model_dir=model.path)
    model.metadata.update(meta)
    for key, value in result.metrics.items():
        metrics.log_metric(key, value)
    if result.confusion_matrix is not None:
        classification_metrics.log_confusion_matrix(meta["class_labels"],
                                                    result.confusion_matrix)
