"""Federated learning, one round per pipeline step: partitioning a data set among
clients as Flower Datasets defines it (:mod:`.partition`), the models as arrays
(:mod:`.models`), and aggregation with Flower's server strategies (:mod:`.strategies`).
The steps themselves are in :mod:`kfp_interop.steps.federated`."""

from kfp_interop.federated.models import FederatedSpec, new_spec
from kfp_interop.federated.partition import PARTITIONS, partition
from kfp_interop.federated.strategies import STRATEGIES, aggregate, epsilon

__all__ = ["PARTITIONS", "partition", "FederatedSpec", "new_spec", "STRATEGIES", "aggregate",
           "epsilon"]
