"""compare_transfer: target accuracy with transfer vs trained from scratch."""

from kfp import dsl
from kfp.dsl import Input, Metrics, Model, Output

from kfp_interop.components._image import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def compare_transfer(
    finetuned: Input[Model],
    scratch: Input[Model],
    metrics: Output[Metrics],
):
    """Log target_accuracy (fine-tuned), scratch_accuracy (same architecture, same k-shot
    data, no pretraining) and transfer_gain, measured on the same target test rows."""
    from kfp_interop.steps_deep import compare_transfer_step

    for key, value in compare_transfer_step(finetuned_dir=finetuned.path,
                                            scratch_dir=scratch.path).items():
        metrics.log_metric(key, value)
