"""federated_finalize: the last global model as a model like any trained one, and the
comparison with the centralized baseline."""

from kfp import dsl
from kfp.dsl import (HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model,
                     Output)

from kfp_interop.components._common import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def federated_finalize(
    global_model: Input[Model],
    centralized: Input[Model],
    partitions: Input[Artifact],
    train_data: Input[Dataset],
    test_data: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[HTML],
    strategy: str = "fedavg",
    strategy_options: str = "{}",
    local_epochs: int = 2,
    dp_clip_norm: float = 0.0,
    dp_noise_multiplier: float = 0.0,
    dp_delta: float = 0.00001,
    seed: int = 42,
) -> str:
    """Write the final global model as a native model folder (with the federated
    provenance the record carries) and the report: accuracy per round against the
    centralized baseline. Returns the native file's sha256.

    Args:
        strategy: the strategy the rounds used.
        strategy_options: its options.
        local_epochs: the clients' epochs per round.
        dp_clip_norm: as for federated_aggregate.
        dp_noise_multiplier: as for federated_aggregate.
        dp_delta: the delta at which epsilon is reported (when noise was added).
        seed: the run's seed.
    """
    from kfp_interop.steps import federated_finalize_step
    from kfp_interop.steps.artifacts import log_training

    meta, cm = federated_finalize_step(global_dir=global_model.path, partitions_dir=partitions.path,
                             train_path=train_data.path, test_path=test_data.path,
                             centralized_dir=centralized.path,
                             strategy=strategy, strategy_options=strategy_options,
                             local_epochs=local_epochs, dp_clip_norm=dp_clip_norm,
                             dp_noise_multiplier=dp_noise_multiplier, dp_delta=dp_delta,
                             seed=seed, model_dir=model.path, report_path=report.path)
    log_training(model, metrics, classification_metrics, meta, cm)
    return meta.native_sha256
