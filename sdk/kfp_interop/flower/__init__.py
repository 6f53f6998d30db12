"""Federated learning on Flower's Deployment Engine (``engine=deployment``): the run's
settings, a SuperLink connection and a run followed to its end (:mod:`.deployment`),
kfp-interop's Flower App, whose ServerApp and ClientApp run at the SuperLink and at each
data owner's SuperNode (:mod:`.app`; imports Flower), and a federation on one machine
(:mod:`.local_federation`, ``kfp-interop federation up/down``). The models and the
aggregation are :mod:`kfp_interop.federated`'s, shared with the simulation."""
