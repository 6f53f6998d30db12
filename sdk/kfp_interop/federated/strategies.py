"""Aggregation with Flower's server strategies, one round per call.

Flower runs a strategy inside its own server loop; here a round is a pipeline step, so
each step builds the strategy, restores what it keeps between rounds, calls its
``aggregate_fit`` with the clients' results (weights and example counts, wrapped as
Flower's ``FitRes``) and saves what it keeps for the next step: FedAdam/FedYogi/
FedAdagrad's moments ``m_t``/``v_t``, FedAvgM's ``momentum_vector``. The global model
going into the round is the strategy's ``initial_parameters`` (FedOpt's
``current_weights``, FedAvgM's reference point), so it needs no saving.

Differential privacy wraps the strategy in Flower's
``DifferentialPrivacyServerSideFixedClipping``: each client's update (its weights minus
the round's global weights) is clipped to L2 norm ``clip_norm``, the updates are
aggregated, and Gaussian noise with standard deviation
``noise_multiplier * clip_norm / clients`` is added to the result. The noise comes from
NumPy's generator, seeded per round so a run is reproducible: that is right for studying
what privacy costs in accuracy, and wrong for a deployment, where the noise must be
unpredictable. ε is reported only as computed by ``dp_accounting``'s RDP accountant (see
:func:`epsilon`).
"""

from __future__ import annotations

from typing import Any, Callable

from kfp_interop.errors import InvalidInputError, UnknownNameError

__all__ = ["STRATEGIES", "STATE_ATTRIBUTES", "aggregate", "epsilon", "check_strategy",
           "check_server_settings"]


def _flwr():
    import importlib.util

    if importlib.util.find_spec("flwr") is None:
        raise InvalidInputError("Federated aggregation uses Flower: pip install "
                                "'kfp-interop[federated]'.")
    from flwr.server import strategy

    return strategy


def _opt(cls_name: str, **defaults) -> Callable[..., Any]:
    def build(initial, options: dict):
        strategy = _flwr()
        return getattr(strategy, cls_name)(initial_parameters=initial,
                                           **{**defaults, **options})
    return build


#: name -> builder(initial_parameters, options) of Flower's strategy. FedProx's server
#: step is FedAvg's; its proximal term is applied by the clients (``proximal_mu``).
STRATEGIES: dict[str, Callable[..., Any]] = {
    "fedavg": _opt("FedAvg"),
    "fedprox": _opt("FedProx", proximal_mu=0.1),
    "fedavgm": _opt("FedAvgM", server_learning_rate=1.0, server_momentum=0.9),
    "fedadam": _opt("FedAdam", eta=0.01, eta_l=0.01, tau=1e-3),
    "fedyogi": _opt("FedYogi", eta=0.01, eta_l=0.01, tau=1e-3),
    "fedadagrad": _opt("FedAdagrad", eta=0.1, eta_l=0.1, tau=1e-3),
    "fedmedian": _opt("FedMedian"),
    "fedtrimmedavg": _opt("FedTrimmedAvg", beta=0.2),
    "krum": _opt("Krum", num_malicious_clients=0),
}
#: what a strategy keeps between rounds (saved as arrays between steps)
STATE_ATTRIBUTES = {"fedadam": ("m_t", "v_t"), "fedyogi": ("m_t", "v_t"),
                    "fedadagrad": ("m_t", "v_t"), "fedavgm": ("momentum_vector",)}


def check_strategy(name: str, options: dict | None = None) -> None:
    """Refuse an unknown strategy (listing the known ones) or options it does not take.

    Raises:
        UnknownNameError, InvalidInputError.
    """
    if name not in STRATEGIES:
        raise UnknownNameError(f"Unknown strategy {name!r}; known: {sorted(STRATEGIES)}.")
    for key, value in (options or {}).items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise InvalidInputError(f"Strategy option {key}={value!r} must be a number.")


def check_server_settings(name: str, options: dict | None, clip_norm: float,
                          noise_multiplier: float) -> None:
    """The aggregation's settings, whichever engine runs it: a known strategy, options
    it takes, DP values that make sense.

    Raises:
        UnknownNameError, InvalidInputError.
    """
    check_strategy(name, options)
    if clip_norm < 0 or noise_multiplier < 0:
        raise InvalidInputError(f"dp_clip_norm={clip_norm} and dp_noise_multiplier="
                                f"{noise_multiplier} must be 0 or more.")
    if noise_multiplier and not clip_norm:
        raise InvalidInputError("dp_noise_multiplier needs dp_clip_norm (the noise is "
                                "scaled to the clipping norm).")


def aggregate(name: str, global_weights: list[Any], results: list[tuple[list[Any], int]], *,
              server_round: int, state: dict[str, list[Any]] | None = None,
              options: dict | None = None, clip_norm: float = 0.0,
              noise_multiplier: float = 0.0, seed: int = 0
              ) -> tuple[list[Any], dict[str, list[Any]]]:
    """One round of ``name`` over the clients' ``(weights, n_examples)``: the next global
    weights and the strategy's state for the next round.

    Raises:
        UnknownNameError: an unknown strategy.
        InvalidInputError: options the strategy does not take, or settings it refuses
            (e.g. Krum with too few clients), named.
    """
    import numpy as np

    check_strategy(name, options)
    strategy_module = _flwr()
    from flwr.common import Code, FitRes, Status, ndarrays_to_parameters
    from flwr.common import parameters_to_ndarrays

    initial = ndarrays_to_parameters([np.asarray(w) for w in global_weights])
    try:
        strategy = STRATEGIES[name](initial, dict(options or {}))
    except (TypeError, ValueError) as e:
        raise InvalidInputError(f"Strategy {name!r} refuses options {options}: {e}") from e
    for attr, arrays in (state or {}).items():
        setattr(strategy, attr, [np.asarray(a) for a in arrays] if arrays else None)
    if clip_norm:
        strategy = strategy_module.DifferentialPrivacyServerSideFixedClipping(
            strategy, noise_multiplier=noise_multiplier, clipping_norm=clip_norm,
            num_sampled_clients=len(results))
        strategy.current_round_params = [np.asarray(w) for w in global_weights]
    fit = [(None, FitRes(status=Status(code=Code.OK, message=""),
                         parameters=ndarrays_to_parameters([np.asarray(w) for w in weights]),
                         num_examples=int(n), metrics={}))
           for weights, n in results]
    saved_rng = np.random.get_state()
    np.random.seed((seed * 100003 + server_round) % (2 ** 32))  # the DP noise, reproducible
    try:
        aggregated, _ = strategy.aggregate_fit(server_round, fit, [])
    except (AssertionError, ValueError) as e:
        raise InvalidInputError(f"Strategy {name!r} cannot aggregate {len(results)} "
                                f"client(s): {e or type(e).__name__}") from e
    finally:
        np.random.set_state(saved_rng)
    if aggregated is None:
        raise InvalidInputError(f"Strategy {name!r} returned no model for round "
                                f"{server_round}.")
    inner = getattr(strategy, "strategy", strategy)
    new_state = {attr: [np.asarray(a) for a in (getattr(inner, attr, None) or [])]
                 for attr in STATE_ATTRIBUTES.get(name, ())}
    dtypes = [np.asarray(w).dtype for w in global_weights]
    return ([np.asarray(w).astype(d, copy=False)
             for w, d in zip(parameters_to_ndarrays(aggregated), dtypes)], new_state)


def epsilon(*, noise_multiplier: float, rounds: int, delta: float) -> float | None:
    """ε of ``rounds`` Gaussian mechanisms with ``noise_multiplier``, every client in
    every round (sampling probability 1), at ``delta``, from ``dp_accounting``'s RDP
    accountant: user-level, for adding or removing one client's clipped update, and
    only as good as the assumptions above (unpredictable noise, honest aggregator).
    ``None`` without noise, or when ``dp_accounting`` is not installed (then no ε is
    claimed)."""
    import importlib.util

    if not noise_multiplier or importlib.util.find_spec("dp_accounting") is None:
        return None
    import dp_accounting

    accountant = dp_accounting.rdp.RdpAccountant()
    accountant.compose(dp_accounting.GaussianDpEvent(noise_multiplier), rounds)
    return float(accountant.get_epsilon(delta))
