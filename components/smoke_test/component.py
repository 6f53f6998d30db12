"""smoke_test: check a live endpoint against the model it should serve."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from kfp_interop.components._image import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def smoke_test(
    deployment: Input[Artifact],
    model: Input[Model],
    test_data: Input[Dataset],
    report: Output[Metrics],
    rows: int = 20,
    tolerance: float = 1e-4,
):
    """Compare served metadata with the record and served predictions with local ONNX
    Runtime on held-out rows; on any mismatch roll the deployment back (Kubernetes
    targets) and fail the task. A dry-run deployment is skipped.

    Args:
        rows: held-out rows to send.
        tolerance: max absolute difference for probabilities/values.
    """
    import json
    import os

    from kfp_interop.data import load_split
    from kfp_interop.deploy import model_file, rollback
    from kfp_interop.errors import SmokeTestError
    from kfp_interop.smoke import smoke_test as run_smoke_test

    report_file = os.path.join(os.path.dirname(report.path), "smoke_report.json")
    if deployment.metadata.get("dry_run"):
        report.log_metric("skipped", 1.0)
        return
    rows_x = load_split(test_data.path).X[:max(1, rows)]
    try:
        result = run_smoke_test(deployment.metadata["endpoint"], model_file(model.path),
                                rows_x, tolerance=tolerance,
                                model_name=deployment.metadata.get("model_name"))
    except SmokeTestError as e:
        if deployment.metadata.get("target") != "local":
            with open(os.path.join(deployment.path, "deployment.json")) as f:
                e.report["rollback"] = rollback(json.load(f))
        with open(report_file, "w") as f:
            json.dump(e.report, f, indent=2)
        raise
    report.log_metric("passed", 1.0)
    report.log_metric("max_abs_diff", result["max_abs_diff"])
    report.log_metric("rows", result["rows"])
    report.log_metric("latency_ms", result["latency_ms"])
    with open(report_file, "w") as f:
        json.dump(result, f, indent=2)
