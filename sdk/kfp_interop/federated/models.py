"""The models a federation trains, as lists of NumPy arrays (what Flower's strategies
aggregate), from any framework with the ``federated`` capability (the framework registry
decides, by architecture): among the built-in ones PyTorch networks (the ``mlp`` and
``cnn`` of the deep pipeline, or an allowed ``module:Class``) and a scikit-learn
logistic regression trained by SGD (``SGDClassifier(loss="log_loss")``, averaged by its
coefficients).

Between pipeline steps a model is a folder: ``weights.npz`` (the arrays, loaded with
``allow_pickle=False``) and ``spec.json`` (what rebuilds it: kind, architecture, sizes,
classes, array names and shapes). Nothing in either is code.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from kfp_interop.errors import InvalidInputError, ModelFileError
from kfp_interop.files import atomic_path, atomic_write_json

__all__ = ["FederatedSpec", "new_spec", "initial_weights", "train_local", "predict_proba",
           "save_weights", "load_weights", "check_same_architecture", "to_native",
           "estimator_name", "WEIGHTS_FILE", "SPEC_FILE"]

WEIGHTS_FILE = "weights.npz"
SPEC_FILE = "spec.json"


@dataclasses.dataclass(frozen=True)
class FederatedSpec:
    """What rebuilds a federated model: ``kind`` (the framework), ``architecture``
    (mlp, cnn, module:Class; logistic), sizes, constructor arguments, and the names and
    shapes of its arrays (so clients' models can be checked against each other)."""

    kind: str
    architecture: str
    n_features: int
    n_classes: int
    init_args: dict = dataclasses.field(default_factory=dict)
    names: tuple = ()
    shapes: tuple = ()

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["names"], d["shapes"] = list(self.names), [list(s) for s in self.shapes]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FederatedSpec":
        return cls(d["kind"], d["architecture"], int(d["n_features"]), int(d["n_classes"]),
                   dict(d.get("init_args") or {}), tuple(d.get("names") or ()),
                   tuple(tuple(s) for s in d.get("shapes") or ()))


def _framework(spec: FederatedSpec):
    from kfp_interop.frameworks import require_capability

    return require_capability(spec.kind, "federated", "Federated learning")


def new_spec(architecture: str, n_features: int, n_classes: int, *,
             init_args: dict | None = None) -> FederatedSpec:
    """The spec of a new model (its array names and shapes filled in), from the first
    registered framework with the ``federated`` capability that trains ``architecture``.

    Raises:
        InvalidInputError: an architecture no framework federates (the message lists the
            frameworks that federate); a module:Class that is not allowed.
    """
    from kfp_interop.frameworks import FRAMEWORKS, with_capability

    able = with_capability("federated")
    fw = next((FRAMEWORKS.get(n) for n in able if FRAMEWORKS.get(n).federates(architecture)),
              None)
    if fw is None:
        raise InvalidInputError(
            f"No framework federates architecture {architecture!r}; frameworks with the "
            f"federated capability: {', '.join(able)} (e.g. "
            + ", ".join(a for n in able
                        for a in getattr(FRAMEWORKS.get(n), "federated_architectures",
                                         getattr(FRAMEWORKS.get(n), "architectures", ())))
            + ", or an allowed module:Class).")
    names, shapes = fw.federated_arrays(architecture, n_features, n_classes,
                                        dict(init_args or {}))
    return FederatedSpec(fw.name, architecture, n_features, n_classes,
                         dict(init_args or {}), tuple(names), tuple(shapes))


def initial_weights(spec: FederatedSpec, *, seed: int) -> list[Any]:
    """The global model before round 1: seeded initial weights (zeros for the linear
    model, as scikit-learn starts it)."""
    return _framework(spec).federated_initial(spec, seed=seed)


def train_local(spec: FederatedSpec, weights: list[Any], X, y, *, epochs: int, lr: float,
                batch_size: int = 32, optimizer: str = "sgd", seed: int,
                proximal_mu: float = 0.0) -> tuple[list[Any], dict]:
    """A client's round: start from the global ``weights``, train ``epochs`` over its own
    rows, return the new weights and its training metrics (loss, accuracy).

    Raises:
        InvalidInputError: bad settings; FedProx's ``proximal_mu`` for the linear model.
    """
    if epochs < 1:
        raise InvalidInputError(f"local_epochs={epochs} must be at least 1.")
    return _framework(spec).federated_train(spec, weights, X, y, epochs=epochs, lr=lr,
                                            batch_size=batch_size, optimizer=optimizer,
                                            seed=seed, proximal_mu=proximal_mu)


def predict_proba(spec: FederatedSpec, weights: list[Any], X) -> Any:
    fw = _framework(spec)
    return fw.predict_proba(fw.federated_model(spec, weights).model, X)


def to_native(spec: FederatedSpec, weights: list[Any]):
    """The model as a :class:`~kfp_interop.frameworks.NativeModel` (what the export
    stage takes)."""
    return _framework(spec).federated_model(spec, weights)


def estimator_name(spec: FederatedSpec) -> str:
    """What the record calls the federated model."""
    return _framework(spec).federated_estimator(spec)


def check_same_architecture(spec: FederatedSpec, weights: list[Any], where: str) -> None:
    """Refuse weights that are not ``spec``'s arrays (a client trained another model).

    Raises:
        InvalidInputError: names the first array that differs.
    """
    shapes = [tuple(w.shape) for w in weights]
    if len(shapes) != len(spec.shapes):
        raise InvalidInputError(f"{where} holds {len(shapes)} arrays; the global model has "
                                f"{len(spec.shapes)}: the clients' models do not share an "
                                "architecture.")
    for name, want, got in zip(spec.names, spec.shapes, shapes):
        if tuple(want) != got:
            raise InvalidInputError(f"{where}: array {name!r} has shape {list(got)}, the "
                                    f"global model's is {list(want)}: the clients' models "
                                    "do not share an architecture.")


def save_weights(directory: str, spec: FederatedSpec, weights: list[Any],
                 extra: dict | None = None) -> None:
    """``directory/weights.npz`` and ``directory/spec.json`` (plus ``extra`` facts)."""
    import numpy as np

    os.makedirs(directory, exist_ok=True)
    with atomic_path(os.path.join(directory, WEIGHTS_FILE), suffix=".npz") as tmp:
        np.savez(tmp, **{f"w{i:04d}": np.asarray(w) for i, w in enumerate(weights)})
    atomic_write_json(os.path.join(directory, SPEC_FILE),
                      {**(extra or {}), "spec": spec.to_dict()})


def load_weights(directory: str) -> tuple[FederatedSpec, list[Any], dict]:
    """What :func:`save_weights` wrote: ``(spec, weights, extra facts)``.

    Raises:
        ModelFileError: missing or unreadable files (object arrays are refused).
    """
    import numpy as np

    try:
        with open(os.path.join(directory, SPEC_FILE)) as f:
            facts = json.load(f)
        with np.load(os.path.join(directory, WEIGHTS_FILE), allow_pickle=False) as data:
            weights = [data[k] for k in sorted(data.files)]
    except (OSError, ValueError, KeyError) as e:
        raise ModelFileError(f"{directory!r} holds no federated model weights: {e}") from e
    spec = FederatedSpec.from_dict(facts.pop("spec"))
    check_same_architecture(spec, weights, directory)
    return spec, weights, facts
