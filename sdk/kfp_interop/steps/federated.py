"""The federated-learning stages, one per pipeline step:

* :func:`federated_split_step` — the simulation's data: the training rows split among
  ``clients`` (IID or Dirichlet label skew; :mod:`kfp_interop.federated.partition`),
  one Parquet file per client, plus the pooled training rows (for the centralized
  baseline) and the held-out test rows;
* :func:`federated_init_step` — the global model of round 0 (seeded);
* :func:`federated_client_step` — one client's round: its own rows, the global model in, its new
  weights and example count out (its rows never leave the step);
* :func:`federated_aggregate_step` — the round's aggregation with a Flower strategy, the global
  model's accuracy on the test rows, the next global model and the strategy's state;
* :func:`federated_centralized_step` — the baseline: the same model on the pooled rows, as many
  epochs as a client trains in all rounds;
* :func:`federated_finalize_step` — the last global model as a model folder like any trained one
  (with the federated provenance for the record), and the report comparing it with the
  baseline round by round.
"""

from __future__ import annotations

import json
import os
from typing import Any

from kfp_interop.constants import DEFAULT_SEED, DEFAULT_TEST_SIZE
from kfp_interop.errors import InvalidInputError
from kfp_interop.files import atomic_write, atomic_write_json
from kfp_interop.steps.stage import stage

__all__ = ["federated_split_step", "federated_init_step", "federated_client_step", "federated_aggregate_step",
           "federated_centralized_step", "federated_finalize_step", "MANIFEST_FILE", "client_file"]

MANIFEST_FILE = "clients.json"
HISTORY_KEY = "history"


def client_file(directory: str, client: int) -> str:
    return os.path.join(directory, f"client-{int(client):03d}.parquet")


@stage("partitions_dir")
def federated_split_step(*, dataset: str = "digits", target_column: str = "", clients: int = 4,
                         partition: str = "dirichlet", alpha: float = 1.0,
                         test_size: float = DEFAULT_TEST_SIZE, seed: int = DEFAULT_SEED,
                         source_fingerprint: str = "", partitions_dir: str, train_path: str,
                         test_path: str) -> dict:
    """Load and split the data; write each client's rows to its own file
    (``source_fingerprint``: as for :func:`load_data_step`, the data set must still be
    what ``fingerprint_data`` saw).

    Returns:
        The manifest: clients, their row counts and class counts, the partition.

    Raises:
        InvalidInputError / DatasetError: fewer than one client; more clients than
            rows; alpha <= 0; a client left with no rows (named); text columns.
    """
    import dataclasses

    import numpy as np

    from kfp_interop.data import save_split, split_dataset, split_metadata
    from kfp_interop.federated.partition import partition as split
    from kfp_interop.storage.objects import load_source

    if isinstance(clients, bool) or not isinstance(clients, int) or clients < 1:
        raise InvalidInputError(f"clients={clients!r} must be at least 1.")
    data = load_source(dataset, source_fingerprint=source_fingerprint,
                       target_column=target_column or None)
    if data.text_columns:
        raise InvalidInputError(f"Text column(s) {data.text_columns}: the federated models "
                                "take numbers.")
    if data.task != "classification":
        raise InvalidInputError(f"{data.source!r} is a {data.task} data set; federated "
                                "learning here trains classifiers.")
    train, test = split_dataset(data, test_size=test_size, seed=seed)
    meta = split_metadata(data)
    meta.update(data_sha256=data.fingerprint(), train_rows=train.n_rows,
                test_rows=test.n_rows, seed=seed)
    parts = split(train.y, clients, kind=partition, alpha=alpha, seed=seed)
    os.makedirs(partitions_dir, exist_ok=True)
    manifest: dict[str, Any] = {"clients": clients, "partition": {
        "kind": partition, "alpha": float(alpha) if partition == "dirichlet" else None,
        "seed": seed}, "rows": [], "class_counts": []}
    for client, rows in enumerate(parts):
        own = dataclasses.replace(train, X=train.X[rows], y=train.y[rows])
        save_split(own, client_file(partitions_dir, client), {**meta, "client": client})
        manifest["rows"].append(int(len(rows)))
        manifest["class_counts"].append(np.bincount(train.y[rows],
                                                    minlength=len(train.class_labels)
                                                    ).astype(int).tolist())
    atomic_write_json(os.path.join(partitions_dir, MANIFEST_FILE), manifest)
    save_split(train, train_path, meta)
    save_split(test, test_path, meta)
    return manifest


def _check_server_settings(strategy: str, strategy_options: str, dp_clip_norm: float,
                           dp_noise_multiplier: float) -> dict:
    """The aggregation's settings, checked (a known strategy, options it takes, DP
    values that make sense); returns the parsed options.

    Raises:
        UnknownNameError, InvalidInputError.
    """
    from kfp_interop.federated.strategies import check_server_settings
    from kfp_interop.training import parse_hyperparameters

    options = parse_hyperparameters(strategy_options, what="strategy_options")
    check_server_settings(strategy, options, dp_clip_norm, dp_noise_multiplier)
    return options


@stage("out_dir")
def federated_init_step(*, train_path: str, architecture: str = "mlp", init_args: str = "{}",
                        seed: int = DEFAULT_SEED, strategy: str = "fedavg",
                        strategy_options: str = "{}", dp_clip_norm: float = 0.0,
                        dp_noise_multiplier: float = 0.0, out_dir: str) -> dict:
    """The round-0 global model; returns its spec. The server's settings (strategy, its
    options, DP) are checked here, before any client trains, so a typo stops the run
    in its first rounds' worth of time rather than after them.

    Raises:
        UnknownNameError / InvalidInputError: an unknown strategy or architecture, options
            or DP values that do not fit.
    """
    from kfp_interop.data import read_split_metadata
    from kfp_interop.federated.models import initial_weights, new_spec, save_weights
    from kfp_interop.training import parse_hyperparameters

    _check_server_settings(strategy, strategy_options, dp_clip_norm, dp_noise_multiplier)
    meta = read_split_metadata(train_path)
    spec = new_spec(architecture, len(meta["feature_names"]), len(meta["class_labels"]),
                    init_args=parse_hyperparameters(init_args, what="init_args"))
    save_weights(out_dir, spec, initial_weights(spec, seed=seed),
                 {"round": 0, HISTORY_KEY: []})
    return spec.to_dict()


@stage("out_dir")
def federated_client_step(*, partitions_dir: str, client: int, global_dir: str, server_round: int,
                local_epochs: int = 2, lr: float = 1e-3, batch_size: int = 32,
                optimizer: str = "adam", proximal_mu: float = 0.0, seed: int = DEFAULT_SEED,
                out_dir: str) -> dict:
    """One client's round: train from the global model on its own rows; writes its
    weights and example count (nothing else about its rows leaves).

    Returns:
        ``{"client", "round", "n_examples", "metrics"}``.
    """
    from kfp_interop.data import load_split
    from kfp_interop.federated.models import load_weights, save_weights, train_local

    path = client_file(partitions_dir, client)
    if not os.path.isfile(path):
        raise InvalidInputError(f"No rows for client {client} in {partitions_dir!r}.")
    rows = load_split(path)
    spec, weights, _ = load_weights(global_dir)
    new, metrics = train_local(spec, weights, rows.X, rows.y, epochs=local_epochs, lr=lr,
                               batch_size=batch_size, optimizer=optimizer,
                               seed=seed * 1000 + server_round * 100 + int(client),
                               proximal_mu=proximal_mu)
    facts = {"client": int(client), "round": int(server_round),
             "n_examples": int(len(rows.y)), "metrics": metrics}
    save_weights(out_dir, spec, new, facts)
    return facts


def _load_state(directory: str) -> dict[str, list[Any]]:
    import numpy as np

    path = os.path.join(directory, "state.npz")
    if not os.path.isfile(path):
        return {}
    state: dict[str, list[Any]] = {}
    with np.load(path, allow_pickle=False) as data:
        for key in sorted(data.files):
            attr, _, _ = key.rpartition("__")
            state.setdefault(attr, []).append(data[key])
    return state


def _save_state(directory: str, state: dict[str, list[Any]]) -> None:
    import numpy as np

    from kfp_interop.files import atomic_path

    arrays = {f"{attr}__{i:04d}": a for attr, values in state.items()
              for i, a in enumerate(values)}
    with atomic_path(os.path.join(directory, "state.npz"), suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


def global_accuracy(spec, weights, test) -> float:
    """The share of ``test``'s rows the model with ``weights`` classifies right."""
    import numpy as np

    from kfp_interop.federated.models import predict_proba

    return float(np.mean(np.argmax(predict_proba(spec, weights, test.X), axis=1) == test.y))


@stage("out_dir")
def federated_aggregate_step(*, global_dir: str, client_dirs: list[str], server_round: int,
                   test_path: str, strategy: str = "fedavg", strategy_options: str = "{}",
                   dp_clip_norm: float = 0.0, dp_noise_multiplier: float = 0.0,
                   seed: int = DEFAULT_SEED, out_dir: str) -> dict:
    """Aggregate the clients' weights with the Flower strategy, evaluate the new global
    model on the test rows, and write it with the strategy's state and the history.

    Returns:
        The round's row of the history: ``round``, ``accuracy``, ``examples``.

    Raises:
        InvalidInputError: clients whose models do not share the architecture; an
            unknown strategy; bad DP settings.
    """
    from kfp_interop.data import load_split
    from kfp_interop.federated.models import check_same_architecture, load_weights
    from kfp_interop.federated.models import save_weights
    from kfp_interop.federated.strategies import aggregate

    options = _check_server_settings(strategy, strategy_options, dp_clip_norm,
                                     dp_noise_multiplier)
    spec, weights, facts = load_weights(global_dir)
    results = []
    for directory in sorted(client_dirs):
        client_spec, client_weights, client_facts = load_weights(directory)
        if client_spec.architecture != spec.architecture:
            raise InvalidInputError(f"Client {client_facts.get('client')} trained "
                                    f"{client_spec.architecture!r}, the global model is "
                                    f"{spec.architecture!r}: the clients' models do not "
                                    "share an architecture.")
        check_same_architecture(spec, client_weights, f"client {client_facts.get('client')}")
        results.append((client_weights, int(client_facts["n_examples"])))
    if not results:
        raise InvalidInputError(f"Round {server_round} has no client results.")
    new, state = aggregate(strategy, weights, results, server_round=server_round,
                           state=_load_state(global_dir),
                           options=options,
                           clip_norm=dp_clip_norm, noise_multiplier=dp_noise_multiplier,
                           seed=seed)
    row = {"round": int(server_round),
           "accuracy": global_accuracy(spec, new, load_split(test_path)),
           "examples": sum(n for _, n in results), "clients": len(results)}
    save_weights(out_dir, spec, new, {"round": int(server_round),
                                      HISTORY_KEY: facts.get(HISTORY_KEY, []) + [row]})
    _save_state(out_dir, state)
    return row


@stage("out_dir")
def federated_centralized_step(*, train_path: str, test_path: str, architecture: str = "mlp",
                     init_args: str = "{}", epochs: int = 10, lr: float = 1e-3,
                     batch_size: int = 32, optimizer: str = "adam", seed: int = DEFAULT_SEED,
                     partitions_dir: str = "", out_dir: str) -> dict:
    """The baselines, the same model from the same initial weights for ``epochs`` (rounds
    x local epochs): trained on the pooled rows (centralized: what federation gives up),
    and, with ``partitions_dir``, on each client's rows alone (local only: what a client
    has without federation). Returns their test accuracies."""
    from kfp_interop.data import load_split
    from kfp_interop.federated.models import initial_weights, new_spec, save_weights
    from kfp_interop.federated.models import train_local
    from kfp_interop.training import parse_hyperparameters

    train, test = load_split(train_path), load_split(test_path)
    spec = new_spec(architecture, train.X.shape[1], len(train.class_labels),
                    init_args=parse_hyperparameters(init_args, what="init_args"))
    start = initial_weights(spec, seed=seed)

    def trained(rows):
        weights, _ = train_local(spec, start, rows.X, rows.y, epochs=epochs, lr=lr,
                                 batch_size=batch_size, optimizer=optimizer, seed=seed)
        return weights

    weights = trained(train)
    result = {"centralized_accuracy": global_accuracy(spec, weights, test), "epochs": int(epochs),
              "rows": int(len(train.y))}
    if partitions_dir:
        with open(os.path.join(partitions_dir, MANIFEST_FILE)) as f:
            clients = int(json.load(f)["clients"])
        local = [global_accuracy(spec, trained(load_split(client_file(partitions_dir, c))), test)
                 for c in range(clients)]
        result.update(local_accuracy=local,
                      local_accuracy_mean=float(sum(local) / len(local)),
                      local_accuracy_min=float(min(local)),
                      local_accuracy_max=float(max(local)))
    save_weights(out_dir, spec, weights, result)
    return result


def _svg(history: list[dict], baseline: float | None, local: float | None = None) -> str:
    """Accuracy per round against the baselines (centralized; the clients alone, mean),
    as an inline SVG line chart."""
    width, height, pad = 520, 260, 40
    rounds = [h["round"] for h in history]
    values = [h["accuracy"] for h in history]
    low = min(values + [0.0] + [v for v in (baseline, local) if v is not None])
    span = max(1e-9, 1.0 - low)

    def x(r):
        return pad + (r - 1) * (width - 2 * pad) / max(1, len(rounds) - 1)

    def y(v):
        return height - pad - (v - low) * (height - 2 * pad) / span

    points = " ".join(f"{x(r):.1f},{y(v):.1f}" for r, v in zip(rounds, values))
    ticks = "".join(f'<text x="{x(r):.1f}" y="{height - pad + 16}" font-size="11" '
                    f'text-anchor="middle">{r}</text>' for r in rounds)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
            f'<rect width="100%" height="100%" fill="white"/>'
            f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
            f'stroke="#444"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" '
            f'stroke="#444"/>{ticks}'
            f'<text x="{width / 2}" y="{height - 6}" font-size="12" text-anchor="middle">'
            f'round</text><text x="12" y="{pad - 12}" font-size="12">test accuracy</text>'
            + (f'<line x1="{pad}" y1="{y(baseline):.1f}" x2="{width - pad}" '
               f'y2="{y(baseline):.1f}" stroke="#d62728" stroke-dasharray="6,4"/>'
               f'<text x="{width - pad}" y="{y(baseline) - 6:.1f}" font-size="11" '
               f'fill="#d62728" text-anchor="end">centralized {baseline:.3f}</text>'
               if baseline is not None else "")
            + (f'<line x1="{pad}" y1="{y(local):.1f}" x2="{width - pad}" y2="{y(local):.1f}"'
               f' stroke="#7f7f7f" stroke-dasharray="2,3"/>'
               f'<text x="{pad + 4}" y="{y(local) - 6:.1f}" font-size="11" fill="#7f7f7f">'
               f'each client alone, mean {local:.3f}</text>' if local is not None else "") +
            f'<polyline points="{points}" fill="none" stroke="#1f77b4" stroke-width="2"/>'
            + "".join(f'<circle cx="{x(r):.1f}" cy="{y(v):.1f}" r="3" fill="#1f77b4"/>'
                      for r, v in zip(rounds, values))
            + f'<text x="{x(rounds[-1]):.1f}" y="{y(values[-1]) + 16:.1f}" font-size="11" '
              f'fill="#1f77b4" text-anchor="end">federated {values[-1]:.3f}</text></svg>')


def write_global_model(spec, weights, *, model_dir: str, data_meta: dict, test,
                       metrics: dict, federated: dict, history: list, strategy: str,
                       local_epochs: int, seed: int) -> tuple:
    """The final global model as a model folder like any trained one (native file,
    ``model_meta.json`` with the federated provenance, the ROC curve on the ``test``
    rows), whichever engine trained it. Returns ``(model meta, confusion matrix)``."""
    from kfp_interop.federated.models import estimator_name, to_native
    from kfp_interop.frameworks import get_framework, save_native
    from kfp_interop.steps.model_dir import ModelMeta, write_model_meta
    from kfp_interop.training import roc_points, score

    native = to_native(spec, weights)
    _, confusion = score(native, test)
    roc = roc_points(native, test)
    saved = save_native(native, model_dir)
    fw = get_framework(native.framework)
    meta = ModelMeta.trained(
        data_meta, framework=native.framework, framework_version=fw.version(),
        estimator=estimator_name(spec), task="classification",
        hyperparameters={"architecture": spec.architecture, "init_args": spec.init_args,
                         "local_epochs": int(local_epochs), "strategy": strategy},
        seed=seed, metrics=metrics, saved=saved, federated=federated, history=history,
        roc_curve=roc)
    write_model_meta(model_dir, meta)
    return meta, confusion

def dp_block(clip_norm: float, noise_multiplier: float, delta: float, rounds: int
             ) -> dict | None:
    """The record's ``dp`` block (None without clipping): ε only as the accountant
    computes it."""
    from kfp_interop.federated.strategies import epsilon

    if not clip_norm:
        return None
    eps = epsilon(noise_multiplier=noise_multiplier, rounds=rounds, delta=delta)
    return {"clip_norm": float(clip_norm), "noise_multiplier": float(noise_multiplier),
            "delta": float(delta) if eps is not None else None, "epsilon": eps,
            "accountant": "dp_accounting RDP" if eps is not None else None}


def dp_line(dp: dict | None) -> str:
    if not dp:
        return "none"
    return (f"clip norm {dp['clip_norm']}, noise multiplier {dp['noise_multiplier']}"
            + (f", epsilon {dp['epsilon']:.2f} at delta {dp['delta']:g} (dp_accounting RDP)"
               if dp["epsilon"] is not None else ", no epsilon claimed"))


def report_html(title: str, paragraphs: list[str], history: list[dict],
                baseline: float | None, local: float | None = None) -> str:
    """The report: the title, the paragraphs, the accuracy per round (chart, table)."""
    rows = "".join(f"<tr><td>{h['round']}</td><td>{h['accuracy']:.4f}</td>"
                   f"<td>{h['examples']}</td></tr>" for h in history)
    return (f"<html><body><h2>{title}</h2>" + "".join(f"<p>{p}</p>" for p in paragraphs)
            + _svg(history, baseline, local) +
            f"<table border='1'><tr><th>round</th><th>test accuracy</th><th>examples"
            f"</th></tr>{rows}</table></body></html>")


@stage("model_dir")
def federated_finalize_step(*, global_dir: str, partitions_dir: str, train_path: str, test_path: str,
                  centralized_dir: str, strategy: str, strategy_options: str = "{}",
                  local_epochs: int = 2, dp_clip_norm: float = 0.0,
                  dp_noise_multiplier: float = 0.0, dp_delta: float = 1e-5,
                  seed: int = DEFAULT_SEED, model_dir: str, report_path: str) -> tuple:
    """The last global model as a model folder (native file, ``model_meta.json`` with the
    federated provenance) and the HTML report (accuracy per round against the baselines).

    Returns:
        ``(model meta, confusion matrix)``; the meta's ``metrics`` hold
        ``federated_accuracy``, ``centralized_accuracy``, ``rounds``, ``clients`` (and,
        when the baseline trained the clients alone, ``local_accuracy_mean``/``_min``/
        ``_max`` and ``federated_vs_local``), and its ``roc_curve`` the binary ROC curve.
    """
    from kfp_interop.data import load_split, read_split_metadata
    from kfp_interop.federated.models import load_weights
    from kfp_interop.federated.strategies import check_strategy
    from kfp_interop.training import parse_hyperparameters

    options = parse_hyperparameters(strategy_options, what="strategy_options")
    check_strategy(strategy, options)  # a known name, numbers only: they reach the report
    spec, weights, facts = load_weights(global_dir)
    _, _, centralized = load_weights(centralized_dir)  # the baselines' facts, typed
    central = float(centralized["centralized_accuracy"])
    history = facts.get(HISTORY_KEY) or []
    if not history:
        raise InvalidInputError(f"{global_dir!r} is the round-0 model: no round ran.")
    with open(os.path.join(partitions_dir, MANIFEST_FILE)) as f:
        manifest = json.load(f)
    data_meta = read_split_metadata(train_path)
    rounds = len(history)
    dp = dp_block(dp_clip_norm, dp_noise_multiplier, dp_delta, rounds)
    federated = {"engine": "simulation", "rounds": rounds,
                 "clients": int(manifest["clients"]), "strategy": strategy,
                 "strategy_options": options,
                 "local_epochs": int(local_epochs), "client_samples": manifest["rows"],
                 "partition": manifest["partition"], "dp": dp,
                 "centralized_accuracy": central}
    local = centralized.get("local_accuracy")  # each client alone (None: not trained)
    if local:
        federated["local_accuracy"] = [float(a) for a in local]
    final = history[-1]["accuracy"]  # the global model on the held-out rows, last round
    metrics = {"accuracy": final, "federated_accuracy": final,
               "centralized_accuracy": central, "federated_gap": final - central,
               "rounds": rounds, "clients": int(manifest["clients"])}
    if local:
        metrics.update(local_accuracy_mean=float(centralized["local_accuracy_mean"]),
                       local_accuracy_min=float(centralized["local_accuracy_min"]),
                       local_accuracy_max=float(centralized["local_accuracy_max"]),
                       federated_vs_local=final - float(centralized["local_accuracy_mean"]))
    meta, confusion = write_global_model(spec, weights, model_dir=model_dir,
                                         data_meta=data_meta,
                                         test=load_split(test_path),
                                         metrics=metrics, federated=federated,
                                         history=history, strategy=strategy,
                                         local_epochs=local_epochs, seed=seed)
    paragraphs = [f"Partition: {manifest['partition']['kind']}"
                  + (f" (alpha {manifest['partition']['alpha']})"
                     if manifest["partition"].get("alpha") else "")
                  + f"; client rows {manifest['rows']}; differential privacy: "
                  f"{dp_line(dp)}.",
                  f"Final global accuracy <b>{final:.4f}</b>; centralized baseline (same "
                  f"model, pooled rows, {centralized['epochs']} epochs) <b>{central:.4f}</b>"
                  + (f"; each client alone (same model and epochs, its own rows): mean <b>"
                     f"{metrics['local_accuracy_mean']:.4f}</b>, "
                     f"{metrics['local_accuracy_min']:.4f} to "
                     f"{metrics['local_accuracy_max']:.4f}" if local else "") + "."]
    html = report_html(f"Federated learning: {strategy}, {manifest['clients']} clients, "
                       f"{rounds} rounds", paragraphs, history, central,
                       metrics.get("local_accuracy_mean"))
    atomic_write(report_path, html)
    return meta, confusion
