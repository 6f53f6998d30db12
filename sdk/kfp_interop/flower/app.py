"""kfp-interop's Flower App, run by Flower's Deployment Engine: the ServerApp
(:data:`server_app`, beside the SuperLink) and the ClientApp (:data:`client_app`, at each
data owner's SuperNode). The model code and the aggregation are the simulation's
(:mod:`kfp_interop.federated.models`, :mod:`kfp_interop.federated.strategies`): one
source of truth between ``engine=simulation`` and ``engine=deployment``.

The ServerApp runs its own round loop on Flower's Grid (rather than a Message-API
strategy's ``start``) so that each round is aggregated by the same
:func:`~kfp_interop.federated.strategies.aggregate` the simulation's steps call (Flower's
strategies, their state between rounds, the DP wrapper), and so that what Flower leaves
to the user is decided here: an error reply fails the run naming the node (Flower's
FedAvg counts it as a failure and finishes "completed" with untrained weights); a node
that does not answer within ``round-timeout`` has dropped out, and the round goes on when
at least the strategy's ``min_fit_clients`` answered, else the run stops with a named
error; too few nodes online within ``node-wait-timeout`` stops it too (Flower waits
forever).

What crosses the network: the global weights to the nodes; each node's new weights, its
example count and training loss/accuracy back. Rows never leave a node: the ClientApp
reads them from its own node config (``data-path``: a CSV/Parquet file or a storage
URI read with the node's own credentials).

The ServerApp writes what the pipeline reads into ``$KFP_INTEROP_FEDERATION_RESULTS/
run-<run id>/`` (a folder, or a storage prefix written with the SuperLink side's
credentials): ``progress.json`` after every round, ``round-NNN.npz`` (the round's global
weights), and at the end ``weights.npz`` + ``spec.json`` (the federated model folder) and
``result.json`` (completed or failed, with the error). The location is the server
operator's setting, not the run's: whoever may start runs cannot make the ServerApp
write elsewhere.

This module imports Flower at import time: only Flower's processes import it.
"""

from __future__ import annotations

import os
import secrets
import time
from typing import Any

from flwr.app import (ArrayRecord, ConfigRecord, Context, Message, MessageType,
                      MetricRecord, RecordDict)
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from kfp_interop.errors import FederationError, InvalidInputError
from kfp_interop.flower.deployment import (RESULTS_ENV, FlowerSettings, ResultsLocation,
                                              run_folder)

__all__ = ["server_app", "client_app", "serve", "train_on_node"]

# Flower's error codes (flwr.common.constant.ErrorCode) for a node that is gone
_NODE_GONE = (3, 4, 5)  # MESSAGE_UNAVAILABLE, REPLY_MESSAGE_UNAVAILABLE, NODE_UNAVAILABLE

server_app = ServerApp()
client_app = ClientApp()


def _log(text: str) -> None:
    print(f"[kfp-interop] {text}", flush=True)


def _wait_for_nodes(grid: Grid, settings: FlowerSettings) -> list[int]:
    deadline = time.monotonic() + settings.node_wait_timeout
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= settings.clients:
            return nodes
        if time.monotonic() > deadline:
            raise FederationError(
                f"Only {len(nodes)} of the {settings.clients} SuperNode(s) the run needs "
                f"(clients={settings.clients}) connected within "
                f"{settings.node_wait_timeout:g} s: start the missing SuperNodes, or lower "
                "clients.")
        _log(f"waiting for SuperNodes: {len(nodes)} of {settings.clients} connected")
        time.sleep(1.0)


def _train_round(grid: Grid, settings: FlowerSettings, weights: list[Any], server_round: int,
                 known: set[int]) -> tuple[list[tuple[list[Any], int]], list[dict], list[int]]:
    """Send the global weights to every connected node; the good replies as
    ``(weights, examples)``, each node's facts, and the nodes that dropped out (those
    that took part before, or were asked now, and did not answer)."""
    nodes = sorted(grid.get_node_ids())
    config = ConfigRecord({"server-round": server_round})
    messages = [Message(content=RecordDict({"arrays": ArrayRecord(weights),
                                            "config": config}),
                        message_type=MessageType.TRAIN, dst_node_id=node)
                for node in nodes]
    replies = list(grid.send_and_receive(messages, timeout=settings.round_timeout))
    import numpy as np

    results, facts = [], []
    for reply in replies:
        node = int(reply.metadata.src_node_id)
        if reply.has_error():
            if reply.error.code in _NODE_GONE:
                continue
            raise FederationError(f"Round {server_round}: the ClientApp on SuperNode "
                                  f"{node} failed: {reply.error.reason}")
        try:  # a node's answer is data: anything malformed names the node
            arrays = reply.content["arrays"].to_numpy_ndarrays()
            metrics = dict(reply.content["metrics"])
            examples = metrics.pop("num-examples")
            if isinstance(examples, bool) or not isinstance(examples, int) or examples < 1:
                raise ValueError(f"num-examples={examples!r} is not a positive integer")
            if not all(np.isfinite(a).all() for a in arrays):
                raise ValueError("its weights hold NaN or infinite values")
            fact = {"node_id": node, "samples": examples,
                    "metrics": {k: float(v) for k, v in metrics.items()}}
        except (KeyError, TypeError, ValueError) as e:
            raise FederationError(f"Round {server_round}: SuperNode {node} answered "
                                  f"without finite weights and a positive example count: "
                                  f"{e}") from e
        results.append((arrays, examples))
        facts.append(fact)
    dropped = sorted((set(nodes) | known) - {f["node_id"] for f in facts})
    known.update(f["node_id"] for f in facts)
    return results, facts, dropped


def serve(grid: Grid, settings: FlowerSettings, results: ResultsLocation) -> dict:
    """The run: wait for ``clients`` nodes, ``rounds`` rounds of training and
    aggregation, the final weights written to ``results``. Returns the summary
    (also ``result.json``).

    Raises:
        FederationError: too few nodes, an error reply (the node named), too few
            replies in a round for the strategy's minimum.
    """
    from kfp_interop.federated.models import (check_same_architecture, initial_weights,
                                              save_weights)
    from kfp_interop.federated.strategies import aggregate

    spec = settings.spec()
    weights = initial_weights(spec, seed=settings.seed)
    _wait_for_nodes(grid, settings)
    # the DP noise must be unpredictable in a deployment: a fresh secret seed per run
    noise_seed = secrets.randbits(31)
    state: dict = {}
    history: list[dict] = []
    known: set[int] = set()
    for server_round in range(1, settings.rounds + 1):
        started = time.monotonic()
        replies, facts, dropped = _train_round(grid, settings, weights, server_round, known)
        if len(replies) < settings.min_fit_clients:
            raise FederationError(
                f"Round {server_round}: {len(replies)} SuperNode(s) answered within "
                f"{settings.round_timeout:g} s (dropped out: {dropped}); the strategy "
                f"needs at least min_fit_clients={settings.min_fit_clients}.")
        for (arrays, _), fact in zip(replies, facts):
            check_same_architecture(spec, arrays, f"SuperNode {fact['node_id']}")
        weights, state = aggregate(settings.strategy, weights, replies,
                                   server_round=server_round, state=state,
                                   options=settings.strategy_options,
                                   clip_norm=settings.dp_clip_norm,
                                   noise_multiplier=settings.dp_noise_multiplier,
                                   seed=noise_seed)
        examples = sum(n for _, n in replies)
        loss = sum(f["metrics"].get("loss", 0.0) * f["samples"] for f in facts) / examples
        row = {"round": server_round, "nodes": facts, "dropped": dropped,
               "examples": examples, "train_loss": loss,
               "seconds": round(time.monotonic() - started, 3)}
        history.append(row)
        results.write_arrays(f"round-{server_round:03d}.npz", weights)
        results.write_json("progress.json", {"rounds": settings.rounds, "history": history})
        _log(f"round {server_round}/{settings.rounds}: {len(replies)} node(s), "
             f"{examples} examples, train loss {loss:.4f}"
             + (f", dropped out: {dropped}" if dropped else ""))
    results.save_model(lambda d: save_weights(d, spec, weights, {"history": history}))
    summary = {"status": "completed", "rounds": settings.rounds, "history": history}
    results.write_json("result.json", summary)
    return summary


@server_app.main()
def _main(grid: Grid, context: Context) -> None:
    root = os.environ.get(RESULTS_ENV, "")
    if not root:
        raise FederationError(f"The SuperLink side has no {RESULTS_ENV}: set it to a folder "
                              "or storage prefix where the ServerApp writes the global "
                              "model (kfp-interop federation up does).")
    results = ResultsLocation(run_folder(root, context.run_id))
    try:
        settings = FlowerSettings.from_run_config(dict(context.run_config))
        serve(grid, settings, results)
    except Exception as e:  # noqa: BLE001 - recorded for the pipeline, then re-raised
        results.write_json("result.json", {"status": "failed",
                                           "error": f"{type(e).__name__}: {e}"})
        raise


def train_on_node(node_id: int, node_config: dict, settings: FlowerSettings,
                  weights: list[Any], server_round: int) -> tuple[list[Any], int, dict]:
    """One node's round on its own rows (``node_config['data-path']``): new weights,
    example count, training metrics.

    Raises:
        InvalidInputError: no ``data-path``; columns or labels that are not the
            federation's (each named, with the node).
    """
    import numpy as np

    from kfp_interop.federated.models import train_local
    from kfp_interop.storage.objects import load_source

    path = str(node_config.get("data-path") or "")
    if not path:
        raise InvalidInputError(f"SuperNode {node_id} has no node config 'data-path': "
                                "start it with --node-config \"data-path='FILE'\" (a CSV or "
                                "Parquet file or an s3:// URI of its rows).")
    target = str(node_config.get("target-column") or settings.target_column)
    data = load_source(path, target_column=target or None, task="classification")
    missing = [f for f in settings.feature_names if f not in data.feature_names]
    if missing:
        raise InvalidInputError(f"SuperNode {node_id}: {path!r} lacks the federation's "
                                f"feature column(s) {missing[:5]}.")
    order = [data.feature_names.index(f) for f in settings.feature_names]
    X = np.asarray(data.numeric())[:, order]
    labels = [data.class_labels[i] for i in data.y]
    unknown = sorted(set(labels) - set(settings.class_labels))
    if unknown:
        raise InvalidInputError(f"SuperNode {node_id}: {path!r} has label(s) {unknown[:5]} "
                                f"the federation does not know ({settings.class_labels}).")
    index = {label: i for i, label in enumerate(settings.class_labels)}
    y = np.asarray([index[label] for label in labels], dtype=np.int64)
    partition = int(node_config.get("partition-id", node_id % 100))
    new, metrics = train_local(settings.spec(), weights, X, y, epochs=settings.local_epochs,
                               lr=settings.lr, batch_size=settings.batch_size,
                               optimizer=settings.optimizer,
                               seed=settings.seed * 1000 + server_round * 100 + partition,
                               proximal_mu=settings.proximal_mu)
    return new, int(len(y)), metrics


@client_app.train()
def _train(msg: Message, context: Context) -> Message:
    settings = FlowerSettings.from_run_config(dict(context.run_config))
    weights = msg.content["arrays"].to_numpy_ndarrays()
    server_round = int(msg.content["config"]["server-round"])
    new, examples, metrics = train_on_node(context.node_id, dict(context.node_config),
                                           settings, weights, server_round)
    record = {"num-examples": examples,
              **{k: float(v) for k, v in metrics.items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool)}}
    return Message(content=RecordDict({"arrays": ArrayRecord(new),
                                       "metrics": MetricRecord(record)}), reply_to=msg)
