"""The ``federated-learning`` reference pipeline: every round a step of the graph.

split the rows among the clients -> the round-0 global model -> for each of ``rounds``
rounds, a ``ParallelFor`` over the clients (each trains from the global model on its own
rows) and an aggregation with a Flower strategy (next global model, its accuracy) ->
the centralized baseline (same model, pooled rows) -> the final global model as a model
like any other: export with the parity gate, record (with the federated provenance),
store, register, deploy, smoke test, promote.

``rounds`` and ``clients`` shape the graph, so they are fixed when the pipeline is
compiled (:data:`GRAPH_PARAMETERS`; ``kfp-interop run/compile/submit
federated-learning --param rounds=10`` compiles again with them); everything else is a
run-time parameter.

``engine`` is a graph parameter too: ``simulation`` (the graph above) or ``deployment``:
the rows stay with their owners behind Flower SuperNodes; the server's evaluation rows
-> one task runs the rounds on a SuperLink (kfp-interop's Flower App) and brings the
global model back -> the same export-and-serve tail (docs/federated.md).
"""

from kfp import dsl

from kfp import kubernetes

from kfp_interop.components import (federated_aggregate, federated_centralized,
                                    federated_client, federated_eval, federated_finalize,
                                    federated_flower, federated_init, federated_split)
from kfp_interop.pipelines.common import (export_and_serve, fingerprint_of, heavy,
                                          reads_storage, reference_pipeline,
                                          storage_credentials)

#: parameters that shape the graph, with their defaults (compile-time)
GRAPH_PARAMETERS = {"rounds": 5, "clients": 4, "engine": "simulation"}
ENGINES = ("simulation", "deployment")
# The SuperLink's CA certificate reaches the deployment task from this Secret (key
# ca.crt; manifests/flower/superlink-tls-secret.yaml), never as a parameter.
SUPERLINK_TLS_SECRET = "kfp-interop-superlink-tls"


def build(rounds: int = GRAPH_PARAMETERS["rounds"], clients: int = GRAPH_PARAMETERS["clients"],
          engine: str = GRAPH_PARAMETERS["engine"]):
    """The pipeline with ``rounds`` rounds of ``clients`` clients, on ``engine``:
    ``simulation`` (every round a step of the graph) or ``deployment`` (one task runs
    the rounds on Flower's Deployment Engine; ``clients`` SuperNodes must be online).

    Raises:
        InvalidInputError: rounds or clients below 1; another engine.
    """
    from kfp_interop.errors import InvalidInputError

    for key, value in (("rounds", rounds), ("clients", clients)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{key}={value!r} must be an integer of at least 1.")
    if engine not in ENGINES:
        raise InvalidInputError(f"engine={engine!r}: use one of {list(ENGINES)}.")

    @reference_pipeline(
        name="federated-learning",
        description=(f"Federated learning with {clients} clients and {rounds} rounds, each "
                     "round a ParallelFor of client steps and a Flower aggregation; compared "
                     "with centralized training; the global model exported, recorded and "
                     "served." if engine == "simulation" else
                     f"Federated learning on Flower's Deployment Engine: {rounds} rounds "
                     f"over {clients} SuperNodes that keep their rows; the global model "
                     "exported, recorded and served."),
        defaults={"model_name": "digits-federated"},
    )
    def federated_learning(
        dataset: str = "digits",
        target_column: str = "",
        partition: str = "dirichlet",
        alpha: float = 1.0,
        architecture: str = "mlp",
        init_args: str = "{}",
        strategy: str = "fedavg",
        strategy_options: str = "{}",
        local_epochs: int = 2,
        lr: float = 0.001,
        batch_size: int = 32,
        optimizer: str = "adam",
        proximal_mu: float = 0.0,
        dp_clip_norm: float = 0.0,
        dp_noise_multiplier: float = 0.0,
        dp_delta: float = 0.00001,
        test_size: float = 0.25,
        seed: int = 42,
        superlink: str = "",
        superlink_insecure: bool = False,
        federation_results: str = "",
        round_timeout: float = 600.0,
        node_wait_timeout: float = 120.0,
        *,
        serving,
    ):
        """Federated training, round by round, against a centralized baseline.

        Args:
            dataset: a classification data set (bundled, a CSV/Parquet file path, or an
                s3://bucket/key.csv URI).
            target_column: the label column of a file.
            partition: iid, or dirichlet (label skew).
            alpha: Dirichlet concentration: 0.1 each client sees few classes, 1.0
                moderately skewed, 100 close to iid (dirichlet only).
            architecture: mlp, cnn or an allowed module:Class (PyTorch), or logistic
                (scikit-learn SGD logistic regression, averaged by its coefficients).
            init_args: JSON constructor arguments of a module:Class.
            strategy: fedavg, fedprox, fedavgm, fedadam, fedyogi, fedadagrad, fedmedian,
                fedtrimmedavg or krum (Flower's server strategies).
            strategy_options: JSON object of the strategy's options, e.g. {"eta": 0.1}.
            local_epochs: epochs each client trains per round.
            lr: the clients' learning rate.
            batch_size: mini-batch size (PyTorch).
            optimizer: the clients' optimizer: adam, adamw or sgd (PyTorch).
            proximal_mu: FedProx's proximal term on the clients (PyTorch; 0: none).
            dp_clip_norm: differential privacy: clip each client's update to this L2
                norm (0: off).
            dp_noise_multiplier: Gaussian noise std as a multiple of the clip norm, over
                the number of clients.
            dp_delta: the delta epsilon is reported at.
            test_size: fraction of rows held out for evaluation.
            seed: seed of the split, the partition, the weights and the noise.
            superlink: engine=deployment: the SuperLink's address, host:port.
            superlink_insecure: engine=deployment: no TLS (a test federation); otherwise
                the CA certificate comes from the Secret kfp-interop-superlink-tls.
            federation_results: engine=deployment: where the SuperLink side writes the
                run's results (a storage prefix, or a folder both see).
            round_timeout: engine=deployment: seconds a round waits for the nodes.
            node_wait_timeout: engine=deployment: seconds to wait for the SuperNodes.
        """
        if engine == "deployment":
            evaluation = reads_storage(federated_eval(
                dataset=dataset, target_column=target_column,
                source_fingerprint=fingerprint_of(dataset, after=serving["check"])))
            evaluation.set_display_name("evaluation rows (the server's)")
            run = federated_flower(
                test_data=evaluation.outputs["test_data"], superlink=superlink,
                federation_results=federation_results,
                superlink_insecure=superlink_insecure, architecture=architecture,
                init_args=init_args, strategy=strategy, strategy_options=strategy_options,
                rounds=rounds, clients=clients, local_epochs=local_epochs, lr=lr,
                batch_size=batch_size, optimizer=optimizer, proximal_mu=proximal_mu,
                dp_clip_norm=dp_clip_norm, dp_noise_multiplier=dp_noise_multiplier,
                dp_delta=dp_delta, seed=seed, round_timeout=round_timeout,
                node_wait_timeout=node_wait_timeout)
            # a federated run is an event, not a function of its inputs: never cached,
            # and not retried (a retry would start another run on every node)
            run.set_caching_options(False)
            storage_credentials(run)
            kubernetes.use_secret_as_env(run, SUPERLINK_TLS_SECRET,
                                         {"ca.crt": "KFP_INTEROP_SUPERLINK_CA"},
                                         optional=True)
            run.set_display_name("federated run on Flower")
            export_and_serve(run, evaluation.outputs["test_data"], serving)
            return
        data = reads_storage(federated_split(
            dataset=dataset, target_column=target_column, clients=clients,
            partition=partition, alpha=alpha, test_size=test_size, seed=seed,
            source_fingerprint=fingerprint_of(dataset, after=serving["check"])))
        data.set_display_name("split among clients")
        init = federated_init(train_data=data.outputs["train_data"],
                              architecture=architecture, init_args=init_args, seed=seed,
                              strategy=strategy, strategy_options=strategy_options,
                              dp_clip_norm=dp_clip_norm,
                              dp_noise_multiplier=dp_noise_multiplier)
        init.set_display_name("global model, round 0")
        global_model = init.outputs["model"]
        for server_round in range(1, rounds + 1):
            with dsl.ParallelFor(list(range(clients)), name=f"round-{server_round}") as client:
                local = heavy(federated_client(
                    partitions=data.outputs["partitions"], global_model=global_model,
                    client=client, server_round=server_round, local_epochs=local_epochs,
                    lr=lr, batch_size=batch_size, optimizer=optimizer,
                    proximal_mu=proximal_mu, seed=seed))
                local.set_display_name(f"client, round {server_round}")
            aggregated = federated_aggregate(
                global_model=global_model, client_models=dsl.Collected(local.outputs["model"]),
                test_data=data.outputs["test_data"], server_round=server_round,
                strategy=strategy, strategy_options=strategy_options,
                dp_clip_norm=dp_clip_norm, dp_noise_multiplier=dp_noise_multiplier, seed=seed)
            aggregated.set_display_name(f"aggregate, round {server_round}")
            global_model = aggregated.outputs["model"]
        central = heavy(federated_centralized(
            train_data=data.outputs["train_data"], test_data=data.outputs["test_data"],
            partitions=data.outputs["partitions"],
            architecture=architecture, init_args=init_args, rounds=rounds,
            local_epochs=local_epochs,
            lr=lr, batch_size=batch_size, optimizer=optimizer, seed=seed))
        central.set_display_name("baselines: centralized, each client alone")
        final = federated_finalize(
            global_model=global_model, centralized=central.outputs["model"],
            partitions=data.outputs["partitions"], train_data=data.outputs["train_data"],
            test_data=data.outputs["test_data"], strategy=strategy,
            strategy_options=strategy_options, local_epochs=local_epochs,
            dp_clip_norm=dp_clip_norm, dp_noise_multiplier=dp_noise_multiplier,
            dp_delta=dp_delta, seed=seed)
        final.set_display_name("final global model")
        export_and_serve(final, data.outputs["test_data"], serving)

    return federated_learning


federated_learning = build()
