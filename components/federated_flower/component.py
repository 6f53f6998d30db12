"""federated_flower: the federation run on Flower's Deployment Engine, its global model
back as a model artifact (engine=deployment)."""

from kfp import dsl
from kfp.dsl import (HTML, ClassificationMetrics, Dataset, Input, Metrics, Model, Output)

from kfp_interop.components._common import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def federated_flower(
    test_data: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[HTML],
    superlink: str,
    federation_results: str,
    superlink_insecure: bool = False,
    architecture: str = "mlp",
    init_args: str = "{}",
    strategy: str = "fedavg",
    strategy_options: str = "{}",
    rounds: int = 5,
    clients: int = 4,
    local_epochs: int = 2,
    lr: float = 0.001,
    batch_size: int = 32,
    optimizer: str = "adam",
    proximal_mu: float = 0.0,
    dp_clip_norm: float = 0.0,
    dp_noise_multiplier: float = 0.0,
    dp_delta: float = 0.00001,
    seed: int = 42,
    round_timeout: float = 600.0,
    node_wait_timeout: float = 120.0,
) -> str:
    """Start kfp-interop's Flower App on the SuperLink, follow the run round by round
    (each round's global model scored on test_data, in this task's log), and write the
    final global model as a native model folder with the run's provenance (engine,
    SuperLink, run id, nodes and their reported example counts) and the report. Returns
    the native file's sha256. A failed run fails the task with Flower's (the ServerApp's)
    message.

    Args:
        superlink: the SuperLink's address, host:port.
        federation_results: where the SuperLink side's ServerApp writes results (its
            KFP_INTEROP_FEDERATION_RESULTS): a storage prefix, or a folder both see.
        superlink_insecure: no TLS (a test federation); otherwise the CA certificate
            comes from the Secret kfp-interop-superlink-tls.
        architecture: mlp, cnn, an allowed module:Class, or logistic.
        init_args: JSON constructor arguments of a module:Class.
        strategy: one of Flower's strategies by name (as the simulation).
        strategy_options: JSON options; min_fit_clients is the fewest answers a round
            aggregates (dropped-out nodes beyond that stop the run).
        rounds: rounds of training.
        clients: SuperNodes that must be online before round 1.
        local_epochs: epochs each node trains per round.
        lr: the nodes' learning rate.
        batch_size: mini-batch size (PyTorch).
        optimizer: adam, adamw or sgd (PyTorch).
        proximal_mu: FedProx's proximal term (PyTorch; 0: none).
        dp_clip_norm: server-side DP clipping norm (0: off).
        dp_noise_multiplier: Gaussian noise as a multiple of the clip norm.
        dp_delta: the delta epsilon is reported at.
        seed: seed of the initial weights and the nodes' training.
        round_timeout: seconds a round waits for answers; nodes that do not answer
            have dropped out.
        node_wait_timeout: seconds to wait for `clients` SuperNodes before round 1.
    """
    from kfp_interop.steps.artifacts import log_training
    from kfp_interop.steps.federated_deployment import federated_flower_step

    meta, cm = federated_flower_step(
        test_path=test_data.path, superlink=superlink, federation_results=federation_results,
        superlink_insecure=superlink_insecure, architecture=architecture,
        init_args=init_args, strategy=strategy, strategy_options=strategy_options,
        rounds=rounds, clients=clients, local_epochs=local_epochs, lr=lr,
        batch_size=batch_size, optimizer=optimizer, proximal_mu=proximal_mu,
        dp_clip_norm=dp_clip_norm, dp_noise_multiplier=dp_noise_multiplier,
        dp_delta=dp_delta, seed=seed, round_timeout=round_timeout,
        node_wait_timeout=node_wait_timeout, model_dir=model.path, report_path=report.path)
    log_training(model, metrics, classification_metrics, meta, cm)
    return meta.native_sha256
