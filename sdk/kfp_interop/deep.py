"""Deep learning on tabular and small-image data: PyTorch and Keras 3.

Every model takes the same input as the tabular models, FP32 ``[-1, n_features]``
(the 8x8 digits are 64 features; the CNN reshapes inside), and classifies into
``n_classes``; so export, parity, the metadata record, serving and the smoke test are the
ones the tabular pipeline uses.

PyTorch: built-in architectures ``mlp`` and ``cnn`` (for 8x8 images), or the user's
``nn.Module`` as ``module:Class`` with constructor arguments as JSON (it receives
``n_features`` and ``n_classes`` too, when its signature takes them). Training is seeded
and deterministic (``torch.manual_seed``, ``torch.use_deterministic_algorithms(True)``,
a seeded shuffling generator). Checkpoints are state dicts (``torch.save``, loaded with
``weights_only=True``) plus the architecture spec, never pickled modules.

Keras 3: the same two architectures on the torch backend (no TensorFlow needed); the
TensorFlow backend when it is installed.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import os
from typing import Callable

from kfp_interop.errors import InvalidInputError, ModelFileError

__all__ = ["ARCHITECTURES", "TorchSpec", "build_torch_model", "train_torch", "torch_predict_proba",
           "save_torch", "load_torch", "keras_backend", "build_keras_model", "train_keras",
           "freeze_prefixes"]

ARCHITECTURES = ("mlp", "cnn")
CHECKPOINT = "model.pt"
SPEC_FILE = "architecture.json"


@dataclasses.dataclass(frozen=True)
class TorchSpec:
    """What rebuilds a PyTorch model: architecture (or ``module:Class``), sizes, kwargs."""

    architecture: str
    n_features: int
    n_classes: int
    init_args: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _torch_modules():
    import torch
    from torch import nn

    class MLP(nn.Module):
        """Two hidden layers; ``backbone`` then ``head`` (transfer learning freezes the
        backbone)."""

        def __init__(self, n_features: int, n_classes: int, hidden: int = 64,
                     dropout: float = 0.0):
            super().__init__()
            self.backbone = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(),
                                          nn.Dropout(dropout), nn.Linear(hidden, hidden),
                                          nn.ReLU())
            self.head = nn.Linear(hidden, n_classes)

        def forward(self, x):
            return self.head(self.backbone(x))

    class CNN(nn.Module):
        """A small CNN for 8x8 single-channel images given as 64 features."""

        def __init__(self, n_features: int, n_classes: int, channels: int = 16):
            super().__init__()
            side = int(round(n_features ** 0.5))
            if side * side != n_features:
                raise InvalidInputError(f"The cnn architecture needs square images; "
                                        f"{n_features} features is not a square (use mlp).")
            self.side = side
            self.backbone = nn.Sequential(
                nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
                nn.Conv2d(channels, channels * 2, 3, padding=1), nn.ReLU(),
                nn.MaxPool2d(2), nn.Flatten(),
                nn.Linear(channels * 2 * (side // 2) ** 2, 64), nn.ReLU())
            self.head = nn.Linear(64, n_classes)

        def forward(self, x):
            return self.head(self.backbone(x.reshape(-1, 1, self.side, self.side)))

    return torch, {"mlp": MLP, "cnn": CNN}


def build_torch_model(spec: TorchSpec):
    """Build the module a spec describes.

    Raises:
        InvalidInputError: unknown architecture, a ``module:Class`` that does not import
            or is not an ``nn.Module``, constructor arguments that do not fit.
    """
    torch, builtin = _torch_modules()
    if spec.architecture in builtin:
        cls = builtin[spec.architecture]
    elif ":" in spec.architecture:
        module, _, name = spec.architecture.partition(":")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as e:
            raise InvalidInputError(f"Cannot import model class {spec.architecture!r}: {e}. "
                                    "Give an importable 'module:Class'.") from e
        if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
            raise InvalidInputError(f"{spec.architecture!r} is not a torch.nn.Module class.")
    else:
        raise InvalidInputError(f"Unknown architecture {spec.architecture!r}; use one of "
                                f"{list(ARCHITECTURES)} or an importable 'module:Class'.")
    kwargs = dict(spec.init_args)
    params = inspect.signature(cls.__init__).parameters
    for key, value in (("n_features", spec.n_features), ("n_classes", spec.n_classes)):
        if key in params:
            kwargs.setdefault(key, value)
    try:
        inspect.signature(cls.__init__).bind(None, **kwargs)
        return cls(**kwargs)
    except TypeError as e:
        raise InvalidInputError(
            f"Constructor arguments {kwargs} do not fit {cls.__name__}"
            f"{inspect.signature(cls.__init__)}: {e}.") from e


def freeze_prefixes(model, prefixes: list[str], *, frozen: bool = True) -> int:
    """(Un)freeze parameters whose names start with a prefix; returns how many."""
    n = 0
    for name, param in model.named_parameters():
        if any(name.startswith(p) for p in prefixes):
            param.requires_grad = not frozen
            n += 1
    return n


def train_torch(model, X, y, *, epochs: int = 20, batch_size: int = 32, lr: float = 1e-3,
                optimizer: str = "adam", seed: int = 42, X_val=None, y_val=None,
                on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    """Seeded, deterministic mini-batch training with cross-entropy.

    Returns:
        Per-epoch ``{"epoch", "loss", "accuracy"[, "val_accuracy"]}``.
    """
    import numpy as np
    import torch

    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise InvalidInputError(f"epochs={epochs}, batch_size={batch_size} and lr={lr} must "
                                "all be positive.")
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise InvalidInputError("Every parameter is frozen: nothing to train.")
    opts = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}
    if optimizer not in opts:
        raise InvalidInputError(f"Unknown optimizer {optimizer!r}; use one of {sorted(opts)}.")
    opt = opts[optimizer](params, lr=lr)
    Xt = torch.as_tensor(np.asarray(X, dtype=np.float32))
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64))
    gen = torch.Generator().manual_seed(seed)
    loss_fn = torch.nn.CrossEntropyLoss()
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(Xt), generator=gen)
        total, correct, seen = 0.0, 0, 0
        for start in range(0, len(Xt), batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            logits = model(Xt[idx])
            loss = loss_fn(logits, yt[idx])
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
            correct += int((logits.argmax(1) == yt[idx]).sum())
            seen += len(idx)
        row = {"epoch": epoch, "loss": total / seen, "accuracy": correct / seen}
        if X_val is not None:
            row["val_accuracy"] = float(np.mean(
                torch_predict_proba(model, X_val).argmax(1) == np.asarray(y_val)))
        history.append(row)
        if on_epoch:
            on_epoch(row)
    model.eval()
    return history


def torch_predict_proba(model, X):
    import numpy as np
    import torch

    model.eval()
    with torch.no_grad():
        logits = model(torch.as_tensor(np.asarray(X, dtype=np.float32)))
        return torch.softmax(logits, dim=1).numpy().astype(np.float64)


def save_torch(model, spec: TorchSpec, directory: str) -> dict:
    import torch

    from kfp_interop.native import sha256_file

    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, CHECKPOINT)
    torch.save(model.state_dict(), path + ".partial")
    os.replace(path + ".partial", path)
    with open(os.path.join(directory, SPEC_FILE), "w") as f:
        json.dump(spec.to_dict(), f, indent=2)
    return {"format": "torch-state-dict", "file": CHECKPOINT, "sha256": sha256_file(path)}


def load_torch(directory: str, spec: TorchSpec | None = None):
    """Rebuild the module and load its weights (``weights_only=True``).

    Raises:
        ModelFileError: no checkpoint, or its tensors do not fit the architecture.
    """
    import torch

    if spec is None:
        with open(os.path.join(directory, SPEC_FILE)) as f:
            spec = TorchSpec(**json.load(f))
    path = os.path.join(directory, CHECKPOINT)
    if not os.path.isfile(path):
        raise ModelFileError(f"No PyTorch checkpoint at {path!r}.")
    model = build_torch_model(spec)
    state = torch.load(path, weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise ModelFileError(
            f"Checkpoint {path!r} does not match architecture {spec.architecture!r} "
            f"(n_features={spec.n_features}, n_classes={spec.n_classes}): {first} "
            "Load it with the architecture it was trained with.") from e
    model.eval()
    return model, spec


# -- Keras ----------------------------------------------------------------------------
def keras_backend(backend: str = "torch"):
    """Import Keras 3 on ``backend`` (set before the first import).

    Raises:
        InvalidInputError: the backend is not installed, or Keras already runs on another.
    """
    import importlib.util

    known = {"torch": "torch", "tensorflow": "tensorflow", "jax": "jax"}
    if backend not in known:
        raise InvalidInputError(f"Unknown Keras backend {backend!r}; use one of {sorted(known)}.")
    if importlib.util.find_spec(known[backend]) is None:
        raise InvalidInputError(f"Keras backend {backend!r} is not installed: pip install "
                                f"{known[backend]} (or use backend 'torch').")
    os.environ.setdefault("KERAS_BACKEND", backend)
    import keras

    if keras.backend.backend() != backend:
        raise InvalidInputError(f"Keras is already running on {keras.backend.backend()!r} "
                                f"in this process; {backend!r} needs a new process.")
    return keras


def build_keras_model(architecture: str, n_features: int, n_classes: int, *,
                      backend: str = "torch", seed: int = 42):
    keras = keras_backend(backend)
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    if architecture == "mlp":
        body = [layers.Dense(64, activation="relu"), layers.Dense(64, activation="relu")]
    elif architecture == "cnn":
        side = int(round(n_features ** 0.5))
        if side * side != n_features:
            raise InvalidInputError(f"The cnn architecture needs square images; {n_features} "
                                    "features is not a square (use mlp).")
        body = [layers.Reshape((side, side, 1)),
                layers.Conv2D(16, 3, padding="same", activation="relu"),
                layers.Conv2D(32, 3, padding="same", activation="relu"),
                layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(64, activation="relu")]
    else:
        raise InvalidInputError(f"Unknown Keras architecture {architecture!r}; use one of "
                                f"{list(ARCHITECTURES)}.")
    return keras.Sequential([keras.Input((n_features,))] + body +
                            [layers.Dense(n_classes, activation="softmax")])


def train_keras(model, X, y, *, epochs: int = 20, batch_size: int = 32, lr: float = 1e-3,
                seed: int = 42, X_val=None, y_val=None,
                on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    import numpy as np

    keras = keras_backend(os.environ.get("KERAS_BACKEND", "torch"))
    keras.utils.set_random_seed(seed)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history: list[dict] = []

    class Log(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": epoch + 1, "loss": float(logs["loss"]),
                   "accuracy": float(logs["accuracy"])}
            if "val_accuracy" in (logs or {}):
                row["val_accuracy"] = float(logs["val_accuracy"])
            history.append(row)
            if on_epoch:
                on_epoch(row)

    val = (np.asarray(X_val, np.float32), np.asarray(y_val)) if X_val is not None else None
    model.fit(np.asarray(X, np.float32), np.asarray(y), epochs=epochs, batch_size=batch_size,
              shuffle=True, verbose=0, validation_data=val, callbacks=[Log()])
    return history
