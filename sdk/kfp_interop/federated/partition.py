"""Splitting a data set among federated clients, as Flower Datasets defines it.

* IID (Flower's ``IidPartitioner`` over a shuffled data set): the rows in a seeded random
  order, cut into ``n`` contiguous, near-equal shards.
* Non-IID by label (Flower's ``DirichletPartitioner``, Hsu et al. 2019): for each class,
  the share of its rows each client gets is drawn from a Dirichlet distribution with
  concentration ``alpha`` (small alpha: each client sees few classes); with
  self-balancing, a client already above the average size gets no more rows; the draw is
  repeated (up to 10 times, as Flower does) until every client has at least
  ``min_partition_size`` rows; each client's rows are then shuffled.

The definitions are Flower Datasets'; the code is ours because that package works on
Hugging Face ``datasets`` objects (and pulls in that stack), while a client's rows here
are NumPy arrays in a Parquet split.
"""

from __future__ import annotations

from typing import Any

from kfp_interop.errors import InvalidInputError

__all__ = ["iid_partition", "dirichlet_partition", "partition", "PARTITIONS",
           "MAX_ATTEMPTS"]

PARTITIONS = ("iid", "dirichlet")
#: draws of the Dirichlet proportions before giving up (as Flower Datasets)
MAX_ATTEMPTS = 10


def _check_counts(n_rows: int, n_clients: int) -> None:
    if isinstance(n_clients, bool) or not isinstance(n_clients, int) or n_clients < 1:
        raise InvalidInputError(f"clients={n_clients!r} must be an integer of at least 1.")
    if n_clients > n_rows:
        raise InvalidInputError(f"{n_clients} clients for {n_rows} training rows: every client "
                                "needs at least one row; use fewer clients or more data.")


def iid_partition(n_rows: int, n_clients: int, *, seed: int) -> list[Any]:
    """Row indices per client: a seeded permutation cut into near-equal shards."""
    import numpy as np

    _check_counts(n_rows, n_clients)
    order = np.random.default_rng(seed).permutation(n_rows)
    return [np.sort(part) for part in np.array_split(order, n_clients)]


def dirichlet_partition(y, n_clients: int, *, alpha: float, seed: int,
                        min_partition_size: int = 1, self_balancing: bool = True
                        ) -> list[Any]:
    """Row indices per client, label-skewed by ``Dirichlet(alpha)`` (see the module).

    Raises:
        InvalidInputError: ``alpha <= 0``; more clients than rows; a client left with
            fewer than ``min_partition_size`` rows after every draw (named, with what to
            change).
    """
    import numpy as np

    y = np.asarray(y)
    _check_counts(len(y), n_clients)
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not alpha > 0:
        raise InvalidInputError(f"alpha={alpha!r} must be a number above 0 (small: each "
                                "client sees few classes; large: close to IID).")
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    average = len(y) / n_clients
    for _ in range(MAX_ATTEMPTS):
        parts: list[list[int]] = [[] for _ in range(n_clients)]
        for k in classes:
            rows = np.nonzero(y == k)[0]
            shares = rng.dirichlet(np.full(n_clients, float(alpha)))
            if self_balancing:
                full = np.array([len(p) > average for p in parts])
                if not full.all():
                    shares = np.where(full, 0.0, shares)
                shares = shares / shares.sum()
            cuts = (np.cumsum(shares) * len(rows)).astype(int)[:-1]
            for client, chunk in enumerate(np.split(rows, cuts)):
                parts[client].extend(chunk.tolist())
        sizes = [len(p) for p in parts]
        if min(sizes) >= min_partition_size:
            out = []
            for p in parts:
                rng.shuffle(p)
                out.append(np.asarray(p, dtype=np.int64))
            return out
    short = [i for i, s in enumerate(sizes) if s < min_partition_size]
    raise InvalidInputError(
        f"With alpha={alpha} and seed={seed}, client(s) {short} get fewer than "
        f"{min_partition_size} row(s) in every one of {MAX_ATTEMPTS} draws (sizes {sizes}): "
        "raise alpha (e.g. 1.0), use fewer clients, or try another seed.")


def partition(y, n_clients: int, *, kind: str = "iid", alpha: float = 1.0, seed: int,
              min_partition_size: int = 1) -> list[Any]:
    """Row indices per client for ``kind`` (``iid`` or ``dirichlet``).

    Raises:
        InvalidInputError: an unknown kind, and see the two partitioners.
    """
    if kind == "iid":
        return iid_partition(len(y), n_clients, seed=seed)
    if kind == "dirichlet":
        return dirichlet_partition(y, n_clients, alpha=alpha, seed=seed,
                                   min_partition_size=min_partition_size)
    raise InvalidInputError(f"Unknown partition {kind!r}; use one of {list(PARTITIONS)}.")
