"""The ``warm-start`` reference pipeline, the tabular variant of transfer learning: an
XGBoost model trained on older rows is continued on newer rows; the same model trained
on the newer rows alone is the baseline; both are compared on the same held-out rows,
and the continued model is exported, recorded (with lineage), stored, registered,
served and smoke-tested."""

from kfp import dsl

from kfp_interop.components import (attach_metadata, compare_transfer, export_onnx,
                                    load_data, split_rows, train, warm_start)
from kfp_interop.pipelines._serving import store_deploy_verify


@dsl.pipeline(
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
    opset: int = 17,
    parity_tolerance: float = 1e-4,
    model_name: str = "",
    model_version: str = "1",
    storage_uri: str = "",
    register: bool = True,
    tracking_uri: str = "",
    deploy_target: str = "local",
    namespace: str = "default",
    canary_percent: int = 0,
    dry_run: bool = False,
    smoke_rows: int = 20,
):
    data = load_data(dataset=dataset, target_column=target_column, seed=seed)
    rows = split_rows(data=data.outputs["train_data"], fraction=old_fraction, seed=seed)
    base = train(train_data=rows.outputs["first"], test_data=data.outputs["test_data"],
                 framework="xgboost", estimator="", seed=seed,
                 hyperparameters=hyperparameters)
    base.set_display_name("base model (older rows)")
    continued = warm_start(base_model=base.outputs["model"], train_data=rows.outputs["second"],
                           test_data=data.outputs["test_data"], n_estimators=added_estimators)
    scratch = train(train_data=rows.outputs["second"], test_data=data.outputs["test_data"],
                    framework="xgboost", estimator="", seed=seed,
                    hyperparameters=hyperparameters)
    scratch.set_display_name("newer rows only")
    compare_transfer(finetuned=continued.outputs["model"], scratch=scratch.outputs["model"])
    exported = export_onnx(model=continued.outputs["model"],
                           test_data=data.outputs["test_data"], opset=opset,
                           parity_tolerance=parity_tolerance)
    attached = attach_metadata(onnx_model=exported.outputs["onnx_model"],
                               model_name=model_name, model_version=model_version)
    store_deploy_verify(attached.outputs["model"], data.outputs["test_data"],
                        model_name=model_name, storage_uri=storage_uri, register=register,
                        tracking_uri=tracking_uri, deploy_target=deploy_target,
                        namespace=namespace, canary_percent=canary_percent, dry_run=dry_run,
                        smoke_rows=smoke_rows, tolerance=parity_tolerance)
