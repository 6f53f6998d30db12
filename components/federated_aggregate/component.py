"""federated_aggregate: a round's aggregation with a Flower strategy."""

from typing import List

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from kfp_interop.components._common import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def federated_aggregate(
    global_model: Input[Model],
    client_models: Input[List[Model]],
    test_data: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    server_round: int,
    strategy: str = "fedavg",
    strategy_options: str = "{}",
    dp_clip_norm: float = 0.0,
    dp_noise_multiplier: float = 0.0,
    seed: int = 42,
):
    """Aggregate the clients' models into the next global model (Flower's strategy, its
    state carried in the model folder), and log its accuracy on the test rows.

    Args:
        server_round: the round (1-based).
        strategy: fedavg, fedprox, fedavgm, fedadam, fedyogi, fedadagrad, fedmedian,
            fedtrimmedavg or krum.
        strategy_options: JSON object of the strategy's options (e.g. {"eta": 0.1}).
        dp_clip_norm: clip each client's update to this L2 norm (0: no DP).
        dp_noise_multiplier: Gaussian noise std as a multiple of the clip norm, divided
            by the number of clients.
        seed: seed of the noise.
    """
    from kfp_interop.steps import federated_aggregate_step
    from kfp_interop.steps.artifacts import log_metrics

    row = federated_aggregate_step(global_dir=global_model.path,
                         client_dirs=[m.path for m in client_models],
                         server_round=server_round, test_path=test_data.path,
                         strategy=strategy, strategy_options=strategy_options,
                         dp_clip_norm=dp_clip_norm, dp_noise_multiplier=dp_noise_multiplier,
                         seed=seed, out_dir=model.path)
    log_metrics(metrics, {"round": row["round"], "global_accuracy": row["accuracy"],
                          "examples": row["examples"]})
    model.metadata.update(row)
