"""smoke_test: check a live endpoint against the model it should serve."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from kfp_interop.components._common import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def smoke_test(
    deployment: Input[Artifact],
    model: Input[Model],
    report: Output[Metrics],
    test_data: Input[Dataset] = None,
    rows: int = 20,
    tolerance: float = 1e-4,
):
    """Compare served metadata with the record and served predictions with local ONNX
    Runtime on held-out rows (test_data), or on the sample an adopted model carries; on
    any mismatch roll the deployment back and fail the task. A dry-run deployment is
    skipped. The report is the artifact's file (JSON).

    Args:
        test_data: held-out rows (a split from load_data); none for an adopted model.
        rows: held-out rows to send.
        tolerance: max absolute difference for probabilities/values.
    """
    from kfp_interop.steps import smoke_test_step
    from kfp_interop.steps.artifacts import log_metrics

    log_metrics(report, smoke_test_step(deployment_dir=deployment.path, model_dir=model.path,
                                        test_path=test_data.path if test_data else None,
                                        rows=rows,
                                        tolerance=tolerance, report_path=report.path))
