"""The federated-learning stages of ``engine=deployment``: the rows stay with their owners,
each behind a SuperNode of Flower's Deployment Engine, and the pipeline only starts the
run and takes the global model back.

* :func:`federated_eval_step` — the server's evaluation rows (every row of ``dataset``:
  its classes and feature names are the federation's);
* :func:`federated_flower_step` — start our Flower App on the SuperLink, follow it round
  by round (each round's global model scored on the evaluation rows, in the task's log),
  and write the final global model as the same model folder the simulation's finalize
  writes, with the run's provenance (engine, SuperLink, run id, the nodes and the example
  counts they reported).
"""

from __future__ import annotations

import os
import tempfile

from kfp_interop.constants import DEFAULT_SEED
from kfp_interop.errors import FederationError, InvalidInputError
from kfp_interop.files import atomic_write
from kfp_interop.steps.stage import stage

__all__ = ["federated_eval_step", "federated_flower_step", "DEFAULT_ROUND_TIMEOUT",
           "DEFAULT_NODE_WAIT"]

DEFAULT_ROUND_TIMEOUT = 600.0
DEFAULT_NODE_WAIT = 120.0


@stage("test_path")
def federated_eval_step(*, dataset: str, target_column: str = "", source_fingerprint: str = "",
                        test_path: str) -> dict:
    """Every row of ``dataset`` as the held-out split (the server's evaluation set: the
    parity gate, the smoke test and each round's accuracy use it). Returns its metadata.

    Raises:
        InvalidInputError / DatasetError: a regression set, text columns, fewer than two
            classes.
    """
    from kfp_interop.data import save_split, split_metadata
    from kfp_interop.storage.objects import load_source

    data = load_source(dataset, source_fingerprint=source_fingerprint,
                       target_column=target_column or None)
    if data.task != "classification" or data.text_columns:
        raise InvalidInputError(f"{dataset!r}: federated learning here trains classifiers "
                                "on numeric features; give a classification set.")
    if len(data.class_labels or ()) < 2:
        raise InvalidInputError(f"{dataset!r} holds {len(data.class_labels or ())} class: "
                                "the evaluation rows define the federation's classes and "
                                "need every one of them.")
    meta = split_metadata(data)
    meta.update(data_sha256=data.fingerprint(), test_rows=data.n_rows, role="evaluation")
    return save_split(data, test_path, meta)


def _progress(results, test, spec, seen: list[dict]) -> None:
    """Score the rounds the ServerApp finished since the last call; log them."""
    from kfp_interop.steps.federated import global_accuracy

    progress = results.read_json("progress.json") or {}
    for row in (progress.get("history") or [])[len(seen):]:
        weights = results.read_arrays(f"round-{int(row['round']):03d}.npz")
        if weights is None:
            break
        accuracy = global_accuracy(spec, weights, test)
        seen.append({"round": int(row["round"]), "accuracy": accuracy,
                     "examples": int(row["examples"]), "clients": len(row["nodes"]),
                     "dropped": [str(n) for n in row.get("dropped") or []]})
        print(f"round {row['round']}/{progress.get('rounds')}: {len(row['nodes'])} node(s), "
              f"{row['examples']} examples, train loss {row['train_loss']:.4f}, "
              f"evaluation accuracy {accuracy:.4f}"
              + (f"; dropped out: {row['dropped']}" if row.get("dropped") else ""),
              flush=True)


def _nodes(history: list[dict]) -> list[dict]:
    nodes: dict[str, dict] = {}
    for row in history:
        for node in row["nodes"]:
            entry = nodes.setdefault(str(node["node_id"]), {"node_id": str(node["node_id"]),
                                                           "samples": 0, "rounds": 0})
            entry["samples"] = int(node["samples"])
            entry["rounds"] += 1
    return sorted(nodes.values(), key=lambda n: n["node_id"])


@stage("model_dir")
def federated_flower_step(*, test_path: str, superlink: str, federation_results: str,
                          superlink_insecure: bool = False, architecture: str = "mlp",
                          init_args: str = "{}", strategy: str = "fedavg",
                          strategy_options: str = "{}", rounds: int = 5, clients: int = 4,
                          local_epochs: int = 2, lr: float = 1e-3, batch_size: int = 32,
                          optimizer: str = "adam", proximal_mu: float = 0.0,
                          dp_clip_norm: float = 0.0, dp_noise_multiplier: float = 0.0,
                          dp_delta: float = 1e-5, seed: int = DEFAULT_SEED,
                          round_timeout: float = DEFAULT_ROUND_TIMEOUT,
                          node_wait_timeout: float = DEFAULT_NODE_WAIT, model_dir: str,
                          report_path: str) -> tuple:
    """Run the federation on the SuperLink at ``superlink`` (TLS with the CA certificate
    in ``$KFP_INTEROP_SUPERLINK_CA`` unless ``superlink_insecure``); ``clients`` SuperNodes
    must be online; the ServerApp's results are read from ``federation_results`` (the
    location the SuperLink side writes to: a folder both see, or a storage prefix).

    Returns:
        ``(model meta, confusion matrix)``, as :func:`federated_finalize_step`.

    Raises:
        InvalidInputError: bad settings (rounds/clients below 1, an unknown strategy or
            architecture), before anything starts.
        FederationUnavailableError: the SuperLink does not answer (its address named).
        FederationError: the run failed (the ServerApp's error: e.g. the node whose
            ClientApp failed), or did not finish in time (then it is stopped).
    """
    from kfp_interop.data import load_split, read_split_metadata
    from kfp_interop.flower.deployment import (CA_ENV, FlowerRun, FlowerSettings,
                                                  ResultsLocation, SuperLink, run_folder,
                                                  write_app)
    from kfp_interop.federated.models import check_same_architecture, load_weights
    from kfp_interop.steps.federated import (dp_block, dp_line, report_html,
                                             write_global_model)
    from kfp_interop.training import parse_hyperparameters

    data_meta = read_split_metadata(test_path)
    options = parse_hyperparameters(strategy_options, what="strategy_options")
    settings = FlowerSettings(
        architecture=architecture, feature_names=tuple(data_meta["feature_names"]),
        class_labels=tuple(data_meta["class_labels"] or ()), rounds=rounds, clients=clients,
        strategy=strategy, strategy_options=options,
        init_args=parse_hyperparameters(init_args, what="init_args"),
        target_column=data_meta["target_name"], local_epochs=local_epochs, lr=lr,
        batch_size=batch_size, optimizer=optimizer, proximal_mu=proximal_mu,
        dp_clip_norm=dp_clip_norm, dp_noise_multiplier=dp_noise_multiplier, seed=seed,
        round_timeout=float(round_timeout), node_wait_timeout=float(node_wait_timeout))
    spec = settings.spec()  # an architecture nobody federates stops here, not on the nodes
    if not federation_results:
        raise InvalidInputError("federation_results is empty: give the folder or storage "
                                "prefix the SuperLink side writes results to (its "
                                "KFP_INTEROP_FEDERATION_RESULTS; kfp-interop federation up "
                                "prints it).")
    link = SuperLink(superlink, insecure=bool(superlink_insecure),
                     ca_pem=os.environ.get(CA_ENV, ""))
    test = load_split(test_path)
    history: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="kfp-interop-flower-") as tmp:
        run = FlowerRun.start(link, write_app(os.path.join(tmp, "app"), settings),
                              os.path.join(tmp, "home"))
        print(f"Flower run {run.run_id} started on {link.address}: {rounds} round(s), "
              f"{clients} SuperNode(s), {strategy}", flush=True)
        results = ResultsLocation(run_folder(federation_results, run.run_id))
        budget = node_wait_timeout + rounds * (round_timeout + 60) + 120
        status = run.follow(timeout=budget,
                            on_poll=lambda: _progress(results, test, spec, history))
        outcome = results.read_json("result.json") or {}
        if not status.startswith("finished:completed") or outcome.get("status") != \
                "completed":
            raise FederationError(
                f"Flower run {run.run_id} on {link.address} ended {status}: "
                + (outcome.get("error") or "the ServerApp left no result in "
                   f"{results.location} (see `flwr log {run.run_id}` on the SuperLink)."))
        _progress(results, test, spec, history)
        results.fetch_model(os.path.join(tmp, "global"))
        got, weights, facts = load_weights(os.path.join(tmp, "global"))
    if got.to_dict() != spec.to_dict():
        raise FederationError(f"Run {run.run_id} returned a {got.architecture!r} model with "
                              "other arrays than the one started: the results location "
                              "holds another run's model.")
    check_same_architecture(spec, weights, f"run {run.run_id}'s global model")
    served = facts.get("history") or []
    if len(history) != len(served):
        raise FederationError(f"Run {run.run_id}: {len(served)} round(s) finished but "
                              f"{len(history)} round model(s) could be read back.")
    nodes = _nodes(served)
    dp = dp_block(dp_clip_norm, dp_noise_multiplier, dp_delta, rounds)
    federated = {"engine": "deployment", "superlink": link.address,
                 "run_id": str(run.run_id), "rounds": len(served), "clients": len(nodes),
                 "strategy": strategy, "strategy_options": options,
                 "local_epochs": int(local_epochs),
                 "client_samples": [n["samples"] for n in nodes], "nodes": nodes, "dp": dp}
    final = history[-1]["accuracy"]
    # the training rows are the nodes' (counted as they reported them); the sha256 and
    # test rows are the evaluation set's, the only rows the pipeline saw
    trained_on = sum(n["samples"] for n in nodes)
    data_meta = {**data_meta, "source": f"flower://{link.address}/runs/{run.run_id}",
                 "evaluation_source": data_meta["source"], "train_rows": trained_on,
                 "rows": trained_on + int(data_meta["test_rows"])}
    metrics = {"accuracy": final, "federated_accuracy": final, "rounds": len(served),
               "clients": len(nodes)}
    meta, confusion = write_global_model(spec, weights, model_dir=model_dir,
                                         data_meta=data_meta, test=test,
                                         metrics=metrics, federated=federated,
                                         history=history, strategy=strategy,
                                         local_epochs=local_epochs, seed=seed)
    paragraphs = [f"Flower Deployment Engine: SuperLink {link.address}, run {run.run_id}; "
                  f"nodes and the examples they reported: "
                  + ", ".join(f"{n['node_id']} ({n['samples']})" for n in nodes)
                  + f"; differential privacy: {dp_line(dp)}.",
                  f"Final global accuracy on the evaluation rows ({test.n_rows}) "
                  f"<b>{final:.4f}</b>. No baseline: the rows stay with their owners (the "
                  "simulation engine compares with centralized training)."]
    atomic_write(report_path, report_html(
        f"Federated learning on Flower: {strategy}, {len(nodes)} node(s), "
        f"{len(served)} rounds", paragraphs, history, None))
    return meta, confusion
