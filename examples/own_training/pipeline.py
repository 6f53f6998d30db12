"""Your own training component, then kfp-interop's: the Model artifact contract in use.

``train_churn_model`` is a component you would write yourself: a scikit-learn
``Pipeline`` whose ``ColumnTransformer`` scales the numeric columns and one-hot encodes
the text ones, trained on ``customers.csv`` (shipped beside this file). It saves the
model with skops and says, in the artifact's metadata, what ``export_onnx`` needs to
know (framework, task, feature_names, text_columns, class_labels; see
``docs/model-artifact.md``), and returns the file's sha256 so the export can tell a
changed artifact from the one trained. From there on it is kfp-interop's components:
export to ONNX with the parity gate, the record, storage, registry, deploy, smoke test
and promotion.

Run it locally: ``kfp-interop run examples/own_training/pipeline.py:own_training --local``.
On a cluster, pass ``data_csv`` as a path the component's pod can read.
"""

import os

from kfp import dsl
from kfp.dsl import Dataset, Model, Output

from kfp_interop.components import (attach_metadata, deploy, export_onnx, promote,
                                    register_model, smoke_test, upload_model)
from kfp_interop.components._common import COMPONENT_OPTIONS

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "customers.csv")


@dsl.component(**COMPONENT_OPTIONS)
def train_churn_model(data_csv: str, model: Output[Model], test_data: Output[Dataset],
                      seed: int = 0) -> str:
    """Fit a churn classifier on numeric and text columns; return the model's sha256."""
    import hashlib

    import pandas as pd
    import skops.io
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = pd.read_csv(data_csv)
    target = frame.pop("churned")
    numbers = ["tenure_months", "monthly_fee", "support_tickets"]
    text = ["plan", "region", "channel"]
    X_train, X_test, y_train, y_test = train_test_split(
        frame, target, test_size=0.25, random_state=seed, stratify=target)
    pipe = Pipeline([
        ("columns", ColumnTransformer([
            ("text", OneHotEncoder(handle_unknown="ignore", sparse_output=False), text),
            ("numbers", StandardScaler(), numbers)])),
        ("model", LogisticRegression(max_iter=1000)),
    ]).fit(X_train, y_train)
    skops.io.dump(pipe, model.path)
    X_test.assign(churned=y_test).to_csv(test_data.path, index=False)
    # the contract export_onnx reads (docs/model-artifact.md)
    model.metadata.update(
        framework="sklearn", task="classification", feature_names=list(frame.columns),
        text_columns=text, class_labels=[str(c) for c in pipe.classes_],
        target_name="churned", estimator="LogisticRegression",
        test_accuracy=float(pipe.score(X_test, y_test)))
    with open(model.path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@dsl.pipeline(name="own-training", description="Your own training component feeding "
                                                "kfp-interop's export, record, store, "
                                                "registry, deploy and smoke test.")
def own_training(data_csv: str = DATA, model_name: str = "churn", storage_uri: str = "",
                 register: bool = True, tracking_uri: str = "", deploy_target: str = "local"):
    trained = train_churn_model(data_csv=data_csv)
    exported = export_onnx(model=trained.outputs["model"],
                           test_data=trained.outputs["test_data"],
                           native_sha256=trained.outputs["Output"])
    attached = attach_metadata(onnx_model=exported.outputs["onnx_model"], model_name=model_name)
    final = attached.outputs["model"]
    stored = upload_model(model=final, storage_uri=storage_uri, name=model_name)
    registered = register_model(model=final, register=register, tracking_uri=tracking_uri,
                                name=model_name)
    deployed = deploy(model=final, target=deploy_target, name=model_name,
                      storage_uri=stored.outputs["Output"])
    smoked = smoke_test(deployment=deployed.outputs["deployment"], model=final,
                        test_data=trained.outputs["test_data"])
    promote(deployment=deployed.outputs["deployment"],
            registration=registered.outputs["registration"],
            tracking_uri=tracking_uri).after(smoked)
