"""federated_centralized: the baselines, the same model on the pooled rows and on each
client's rows alone."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from kfp_interop.components._common import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def federated_centralized(
    train_data: Input[Dataset],
    test_data: Input[Dataset],
    partitions: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    architecture: str = "mlp",
    init_args: str = "{}",
    rounds: int = 5,
    local_epochs: int = 2,
    lr: float = 0.001,
    batch_size: int = 32,
    optimizer: str = "adam",
    seed: int = 42,
):
    """The federation's baselines, from the same initial weights, for as many epochs as a
    client trains in all rounds (rounds x local_epochs): the model trained on all rows
    pooled (centralized: what federation gives up to keep data apart), and on each
    client's rows alone (local only: what a client has without federation), all scored
    on the same test rows.

    Args:
        architecture: as for federated_init.
        init_args: as for federated_init.
        rounds: the federation's rounds.
        local_epochs: a client's epochs per round.
        lr: learning rate.
        batch_size: mini-batch size (PyTorch).
        optimizer: as for the clients.
        seed: seed of the initial weights and the order.
    """
    from kfp_interop.steps import federated_centralized_step
    from kfp_interop.steps.artifacts import log_metrics

    result = federated_centralized_step(train_path=train_data.path, test_path=test_data.path,
                              architecture=architecture, init_args=init_args,
                              epochs=rounds * local_epochs,
                              lr=lr, batch_size=batch_size, optimizer=optimizer, seed=seed,
                              partitions_dir=partitions.path, out_dir=model.path)
    log_metrics(metrics, result)  # numbers; the per-client list stays in the metadata
    model.metadata.update(result)
