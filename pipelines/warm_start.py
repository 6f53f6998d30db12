"""The ``warm-start`` reference pipeline, the tabular variant of transfer learning: an
XGBoost model trained on older rows is continued on newer rows; the same model trained
on the newer rows alone is the baseline; both are compared on the same held-out rows,
and the continued model is exported, recorded (with lineage), stored, registered,
served and smoke-tested."""

from kfp_interop.components import compare_transfer, split_rows, train, warm_start
from kfp_interop.pipelines.common import (export_and_serve, heavy, load_data_by_content,
                                         reference_pipeline)


@reference_pipeline(
    name="warm-start",
    description="Continue an XGBoost model on new rows, compare with training on the new "
                "rows alone, export the continued model and serve it.",
)
def warm_start_pipeline(
    dataset: str = "breast_cancer",
    target_column: str = "",
    old_fraction: float = 0.5,
    hyperparameters: str = '{"n_estimators": 50}',
    added_estimators: int = 50,
    seed: int = 42,
    *,
    serving,
):
    """Continue a model on newer rows, compare with training on them alone, serve it.

    Args:
        dataset: a bundled data set, a CSV/Parquet file path, or an s3://bucket/key.csv
            URI.
        target_column: the label column of a file.
        old_fraction: fraction of the training rows that are "older" (the base model's).
        hyperparameters: JSON object of XGBoost hyperparameters of both models.
        added_estimators: trees added on the newer rows.
        seed: seed of the splits and the models.
    """
    data = load_data_by_content(dataset, after=serving["check"], target_column=target_column,
                                seed=seed)
    rows = split_rows(data=data.outputs["train_data"], fraction=old_fraction, seed=seed)
    base = heavy(train(train_data=rows.outputs["first"], test_data=data.outputs["test_data"],
                       framework="xgboost", estimator="", seed=seed,
                       hyperparameters=hyperparameters))
    base.set_display_name("base model (older rows)")
    continued = heavy(warm_start(base_model=base.outputs["model"],
                                 train_data=rows.outputs["second"],
                                 test_data=data.outputs["test_data"],
                                 n_estimators=added_estimators))
    scratch = heavy(train(train_data=rows.outputs["second"],
                          test_data=data.outputs["test_data"], framework="xgboost",
                          estimator="", seed=seed, hyperparameters=hyperparameters))
    scratch.set_display_name("newer rows only")
    compare_transfer(finetuned=continued.outputs["model"], scratch=scratch.outputs["model"])
    export_and_serve(continued, data.outputs["test_data"], serving)
