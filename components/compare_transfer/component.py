"""compare_transfer: target accuracy with transfer vs trained from scratch."""

from kfp import dsl
from kfp.dsl import Input, Metrics, Model, Output

from kfp_interop.components._common import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def compare_transfer(
    finetuned: Input[Model],
    scratch: Input[Model],
    metrics: Output[Metrics],
):
    """Log target_accuracy (fine-tuned), scratch_accuracy (same architecture, same k-shot
    data, no pretraining) and transfer_gain, measured on the same target test rows."""
    from kfp_interop.steps import compare_transfer_step
    from kfp_interop.steps.artifacts import log_metrics

    log_metrics(metrics, compare_transfer_step(finetuned_dir=finetuned.path,
                                               scratch_dir=scratch.path,
                                               report_path=metrics.path))
