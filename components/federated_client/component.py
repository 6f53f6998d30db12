"""federated_client: one client's round, on its own rows only."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from kfp_interop.components._common import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def federated_client(
    partitions: Input[Artifact],
    global_model: Input[Model],
    model: Output[Model],
    client: int,
    server_round: int,
    local_epochs: int = 2,
    lr: float = 0.001,
    batch_size: int = 32,
    optimizer: str = "adam",
    proximal_mu: float = 0.0,
    seed: int = 42,
):
    """Train from the global model on this client's rows; only the weights and the
    example count leave the step.

    Args:
        client: the client's index.
        server_round: the round (1-based).
        local_epochs: epochs over the client's rows per round.
        lr: learning rate.
        batch_size: mini-batch size (PyTorch).
        optimizer: adam, adamw or sgd (PyTorch).
        proximal_mu: FedProx's proximal term (0: none).
        seed: base seed (each client and round derives its own).
    """
    from kfp_interop.steps import federated_client_step

    model.metadata.update(federated_client_step(
        partitions_dir=partitions.path, client=client, global_dir=global_model.path,
        server_round=server_round, local_epochs=local_epochs, lr=lr, batch_size=batch_size,
        optimizer=optimizer, proximal_mu=proximal_mu, seed=seed, out_dir=model.path))
