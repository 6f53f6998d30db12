"""The models a federation trains, as lists of NumPy arrays (what Flower's strategies
aggregate): PyTorch networks (the ``mlp`` and ``cnn`` of the deep pipeline, or an
allowed ``module:Class``) and a scikit-learn logistic regression trained by SGD
(``SGDClassifier(loss="log_loss")``, averaged by its coefficients).

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
           "WEIGHTS_FILE", "SPEC_FILE", "SKLEARN_ARCHITECTURES"]

WEIGHTS_FILE = "weights.npz"
SPEC_FILE = "spec.json"
#: the scikit-learn models a federation can train
SKLEARN_ARCHITECTURES = ("logistic",)


@dataclasses.dataclass(frozen=True)
class FederatedSpec:
    """What rebuilds a federated model: ``kind`` (torch or sklearn), ``architecture``
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


def _torch_spec(spec: FederatedSpec):
    from kfp_interop.frameworks.torch import TorchSpec

    return TorchSpec(spec.architecture, spec.n_features, spec.n_classes, dict(spec.init_args))


def _sgd(lr: float, seed: int):
    from sklearn.linear_model import SGDClassifier

    # a constant step: the same update rule in every round, whatever the client's t_
    return SGDClassifier(loss="log_loss", learning_rate="constant", eta0=lr, alpha=1e-4,
                         random_state=seed)


def new_spec(architecture: str, n_features: int, n_classes: int, *,
             init_args: dict | None = None) -> FederatedSpec:
    """The spec of a new model (its array names and shapes filled in).

    Raises:
        InvalidInputError: an unknown architecture; a module:Class that is not allowed.
    """
    if architecture in SKLEARN_ARCHITECTURES:
        if init_args:
            raise InvalidInputError("init_args apply to PyTorch architectures; 'logistic' "
                                    "takes none.")
        rows = 1 if n_classes == 2 else n_classes
        return FederatedSpec("sklearn", architecture, n_features, n_classes, {},
                             ("coef", "intercept"), ((rows, n_features), (rows,)))
    from kfp_interop.frameworks.torch import build_torch_model

    spec = FederatedSpec("torch", architecture, n_features, n_classes, dict(init_args or {}))
    state = build_torch_model(_torch_spec(spec)).state_dict()
    return dataclasses.replace(spec, names=tuple(state),
                               shapes=tuple(tuple(t.shape) for t in state.values()))


def initial_weights(spec: FederatedSpec, *, seed: int) -> list[Any]:
    """The global model before round 1: seeded initial weights (zeros for the linear
    model, as scikit-learn starts it)."""
    import numpy as np

    if spec.kind == "sklearn":
        return [np.zeros(s, dtype=np.float64) for s in spec.shapes]
    import torch

    from kfp_interop.frameworks.torch import build_torch_model

    torch.manual_seed(seed)
    return _arrays(build_torch_model(_torch_spec(spec)))


def _arrays(model) -> list[Any]:
    """A PyTorch module's state as NumPy arrays, in its state dict's order."""
    return [t.detach().cpu().numpy().copy() for t in model.state_dict().values()]


def _torch_model(spec: FederatedSpec, weights: list[Any]):
    import torch

    from kfp_interop.frameworks.torch import build_torch_model

    model = build_torch_model(_torch_spec(spec))
    model.load_state_dict({n: torch.as_tensor(w) for n, w in zip(spec.names, weights)})
    model.eval()
    return model


def _sklearn_model(spec: FederatedSpec, weights: list[Any], *, lr: float = 0.01,
                   seed: int = 0, X=None, y=None):
    """An SGDClassifier holding ``weights`` (fitted once on a row to set its classes,
    then given the weights)."""
    import numpy as np

    model = _sgd(lr, seed)
    classes = np.arange(spec.n_classes)
    if X is None:
        X, y = np.zeros((1, spec.n_features)), np.zeros(1, dtype=np.int64)
    model.partial_fit(X[:1], y[:1], classes=classes)
    model.coef_ = np.array(weights[0], dtype=np.float64)
    model.intercept_ = np.array(weights[1], dtype=np.float64)
    return model


def train_local(spec: FederatedSpec, weights: list[Any], X, y, *, epochs: int, lr: float,
                batch_size: int = 32, optimizer: str = "sgd", seed: int,
                proximal_mu: float = 0.0) -> tuple[list[Any], dict]:
    """A client's round: start from the global ``weights``, train ``epochs`` over its own
    rows, return the new weights and its training metrics (loss, accuracy).

    Raises:
        InvalidInputError: bad settings; FedProx's ``proximal_mu`` for the linear model.
    """
    import numpy as np

    if epochs < 1:
        raise InvalidInputError(f"local_epochs={epochs} must be at least 1.")
    if spec.kind == "sklearn":
        if proximal_mu:
            raise InvalidInputError("FedProx's proximal term (proximal_mu) is implemented "
                                    "for PyTorch models; the linear model trains without it.")
        model = _sklearn_model(spec, weights, lr=lr, seed=seed, X=X, y=y)
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            order = rng.permutation(len(y))
            model.partial_fit(X[order], y[order])
        accuracy = float(np.mean(model.predict(X) == y))
        return [model.coef_.copy(), model.intercept_.copy()], {"accuracy": accuracy}
    from kfp_interop.frameworks.torch import train_torch

    model = _torch_model(spec, weights)
    history = train_torch(model, X, y, epochs=epochs, batch_size=batch_size, lr=lr,
                          optimizer=optimizer, seed=seed, proximal_mu=proximal_mu)
    return _arrays(model), {"loss": history[-1]["loss"], "accuracy": history[-1]["accuracy"]}


def predict_proba(spec: FederatedSpec, weights: list[Any], X) -> Any:
    if spec.kind == "sklearn":
        return _sklearn_model(spec, weights).predict_proba(X)
    from kfp_interop.frameworks.torch import torch_predict_proba

    return torch_predict_proba(_torch_model(spec, weights), X)


def to_native(spec: FederatedSpec, weights: list[Any]):
    """The model as a :class:`~kfp_interop.frameworks.NativeModel` (what the export
    stage takes): a PyTorch module with its TorchSpec, or the SGDClassifier."""
    from kfp_interop.frameworks import NativeModel

    if spec.kind == "sklearn":
        return NativeModel(_sklearn_model(spec, weights), "sklearn", "classification")
    return NativeModel(_torch_model(spec, weights), "torch", "classification",
                       _torch_spec(spec))


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
