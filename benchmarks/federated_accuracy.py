"""Federated against centralized accuracy, per strategy and partition: the pipeline's
own steps (split, init, client rounds, Flower aggregation, centralized baseline) called
in one process, for IID data and Dirichlet label skew with alpha in {1.0, 0.1}, on the
pipeline's defaults otherwise (digits, MLP, 4 clients, 5 rounds, 2 local epochs, Adam);
with the other baseline, each client trained alone (mean over clients).

Usage: ``python benchmarks/federated_accuracy.py [--strategies fedavg fedprox fedadam
fedmedian] [--seeds 42 7] [--partitions iid 1.0 0.1] [--proximal-mu 0.1]
[--server-lr ETA] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile


def run(strategy: str, partition: str, alpha: float, seed: int, *, clients: int, rounds: int,
        architecture: str, proximal_mu: float = 0.1,
        server_lr: float | None = None, dp: tuple[float, float] = (0.0, 0.0)
        ) -> tuple[float, float, float]:
    from kfp_interop.steps import (federated_aggregate_step, federated_centralized_step, federated_client_step,
                                   federated_init_step, federated_split_step)

    d = tempfile.mkdtemp()
    federated_split_step(dataset="digits", clients=clients, partition=partition, alpha=alpha,
                         seed=seed, partitions_dir=f"{d}/parts", train_path=f"{d}/train",
                         test_path=f"{d}/test")
    federated_init_step(train_path=f"{d}/train", architecture=architecture, seed=seed,
                        out_dir=f"{d}/g0")
    mu = proximal_mu if strategy == "fedprox" else 0.0
    options = {"proximal_mu": mu} if strategy == "fedprox" else {}
    if server_lr is not None and strategy in ("fedadam", "fedyogi", "fedadagrad", "fedavgm"):
        options["eta" if strategy != "fedavgm" else "server_learning_rate"] = server_lr
    row = None
    for r in range(1, rounds + 1):
        dirs = []
        for c in range(clients):
            federated_client_step(partitions_dir=f"{d}/parts", client=c, global_dir=f"{d}/g{r - 1}",
                        server_round=r, proximal_mu=mu, seed=seed, out_dir=f"{d}/r{r}c{c}")
            dirs.append(f"{d}/r{r}c{c}")
        row = federated_aggregate_step(global_dir=f"{d}/g{r - 1}", client_dirs=dirs, server_round=r,
                             test_path=f"{d}/test", strategy=strategy,
                             strategy_options=json.dumps(options), seed=seed,
                             dp_clip_norm=dp[0], dp_noise_multiplier=dp[1],
                             out_dir=f"{d}/g{r}")
    central = federated_centralized_step(train_path=f"{d}/train", test_path=f"{d}/test",
                               architecture=architecture, epochs=rounds * 2, seed=seed,
                               partitions_dir=f"{d}/parts", out_dir=f"{d}/central")
    return row["accuracy"], central["centralized_accuracy"], central["local_accuracy_mean"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--strategies", nargs="+", default=["fedavg", "fedprox", "fedadam",
                                                        "fedmedian"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 7])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--architecture", default="mlp")
    ap.add_argument("--proximal-mu", type=float, default=0.1, help="FedProx's mu")
    ap.add_argument("--server-lr", type=float, default=None,
                    help="eta of FedAdam/FedYogi/FedAdagrad (the pipeline's defaults: "
                         "0.01, 0.01, 0.1), server_learning_rate of FedAvgM (1.0)")
    ap.add_argument("--dp", nargs=2, type=float, default=[0.0, 0.0],
                    metavar=("CLIP_NORM", "NOISE_MULTIPLIER"),
                    help="server-side clipping and noise (epsilon printed at delta 1e-5)")
    ap.add_argument("--partitions", nargs="+", default=["iid", "1.0", "0.1"],
                    help="iid, or Dirichlet alphas")
    ap.add_argument("--json")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    partitions = [("iid", 1.0) if p == "iid" else ("dirichlet", float(p))
                  for p in args.partitions]
    results = []
    print(f"{args.architecture}, {args.clients} clients, {args.rounds} rounds, seeds "
          f"{args.seeds}, fedprox mu {args.proximal_mu}, server lr {args.server_lr}: final "
          "global test accuracy (mean over seeds, min-max) vs centralized")
    if args.dp[0]:
        from kfp_interop.federated.strategies import epsilon

        eps = epsilon(noise_multiplier=args.dp[1], rounds=args.rounds, delta=1e-5)
        print(f"DP: clip norm {args.dp[0]}, noise multiplier {args.dp[1]}: epsilon "
              f"{'none claimed' if eps is None else f'{eps:.2f}'} at delta 1e-5 "
              f"(dp_accounting RDP, user level)")
    for strategy in args.strategies:
        for partition, alpha in partitions:
            fed, cen, loc = zip(*(run(strategy, partition, alpha, s, clients=args.clients,
                                 rounds=args.rounds, architecture=args.architecture,
                                 proximal_mu=args.proximal_mu, server_lr=args.server_lr,
                                 dp=tuple(args.dp))
                             for s in args.seeds))
            label = "iid" if partition == "iid" else f"alpha={alpha}"
            results.append({"strategy": strategy, "partition": label,
                            "federated": statistics.mean(fed), "federated_min": min(fed),
                            "federated_max": max(fed), "centralized": statistics.mean(cen),
                            "local_only": statistics.mean(loc)})
            r = results[-1]
            print(f"{strategy:<10} {label:<10} federated {r['federated']:.4f} "
                  f"[{r['federated_min']:.4f}-{r['federated_max']:.4f}]  centralized "
                  f"{r['centralized']:.4f}  gap {r['federated'] - r['centralized']:+.4f}  "
                  f"each client alone {r['local_only']:.4f}",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
