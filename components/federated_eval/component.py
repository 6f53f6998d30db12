"""federated_eval: the server's evaluation rows of a federation on Flower's Deployment
Engine (engine=deployment)."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from kfp_interop.components._common import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def federated_eval(
    dataset: str,
    test_data: Output[Dataset],
    target_column: str = "",
    source_fingerprint: str = "",
):
    """Every row of `dataset` as the held-out split: the rows the server evaluates each
    round's global model on, and the parity gate and smoke test use. Its classes and
    feature names are the federation's.

    Args:
        dataset: a classification data set (bundled, a CSV/Parquet file path or a
            storage URI).
        target_column: the label column of a file.
        source_fingerprint: sha256 of the data set's content from fingerprint_data (the
            task's cache key follows the content; a changed file is refused).
    """
    from kfp_interop.steps.federated_deployment import federated_eval_step

    meta = federated_eval_step(dataset=dataset, target_column=target_column,
                               source_fingerprint=source_fingerprint,
                               test_path=test_data.path)
    test_data.metadata.update({"rows": meta["rows"], "classes": len(meta["class_labels"])})
